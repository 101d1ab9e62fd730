"""Fixtures for the deployment tests: a real Airflow (scheduler, API server, DAG processor and,
for Celery, a worker) per executor kind, started for the module and stopped after it.

- LocalExecutor, PostgreSQL metadata DB, file:// store.
- CeleryExecutor, PostgreSQL metadata DB, Redis broker, `db+postgresql` result backend, a
  separate `airflow celery worker`, S3 store (moto, through an Airflow connection).

A missing service (PostgreSQL, Redis, the Celery provider, the S3 server) skips the tests
with a reason naming it; with CI=true it fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .deployment import Deployment, FileStore, S3Store, missing_services

KINDS = ["local", "celery"]
ALL_DAGS = ["xcsd_mapped", "xcsd_rerun", "xcsd_retry", "xcsd_daily"]
S3_CONN_ID = "xcsd_s3"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deployment: starts a real Airflow deployment (scheduler, API server, DAG processor, "
        "workers) on PostgreSQL (and Redis for Celery)",
    )


def need(problems: list[str], what: str) -> None:
    if not problems:
        return
    message = f"{what} needs: " + "; ".join(problems)
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module", params=KINDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind: str = request.param
    need(missing_services(kind), f"the {kind} deployment")
    home = tmp_path_factory.mktemp(f"deployment-{kind}")
    extra: dict[str, str] = {}
    store: Any
    if kind == "celery":
        s3_server = request.getfixturevalue("s3_server")  # skips (or fails in CI) when missing
        from tests.servers import fixtures, s3

        fixtures.require(s3.check_airflow_installed)
        bucket = s3_server.create_bucket(fixtures.unique_name("xcsd"))
        store = S3Store(s3_server_fs(s3_server), s3_server.url(S3_CONN_ID, bucket, "xcom"))
        extra = s3_server.airflow_env(S3_CONN_ID)
    else:
        store = FileStore(home / "store")
    deployment = Deployment(kind, home / "airflow", store, extra)
    try:
        deployment.start()
        deployment.wait_for_dags(ALL_DAGS)
        yield deployment
    finally:
        deployment.stop()


def s3_server_fs(server: Any) -> Any:
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options())
