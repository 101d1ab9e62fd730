"""Fixtures for the integration tests: Airflow processes per configuration, and store views.

Every process the selected tests need starts before the first test, so their warm-ups (~7 s
of CPU each) overlap on the two cores; afterwards each DAG run is a command to a warm process
(about a second).

XCOMSTORE_TEST_DB=sqlite (default) | postgres | mysql selects the metadata DB.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    DAGS_FOLDER,
    AirflowLauncher,
    AirflowProcess,
    BackendConfig,
    FileStoreView,
    RunResult,
    S3StoreView,
    StoreView,
)

# The DAGs' shared module (values and comparisons) is imported by the tests too.
sys.path.insert(0, str(DAGS_FOLDER))

THRESHOLD = 1024


@dataclass(frozen=True)
class Target:
    """One configured Airflow process and a direct view of its object store."""

    config: BackendConfig
    process: AirflowProcess
    store: StoreView

    @property
    def threshold(self) -> int:
        return int(self.config.threshold)


# -- the configurations ----------------------------------------------------------------------
def _file_configs(root: Path) -> list[BackendConfig]:
    def path(name: str) -> str:
        return f"file://{root}/store-{name}"

    return [
        # The main one: round trips, lifecycle (rerun, forgery, corruption) tests.
        BackendConfig("file-zstd", path("file-zstd"), THRESHOLD, "zstd"),
        # Threshold 0: everything but Airflow's internal keys is offloaded; runs the branch DAG.
        BackendConfig("file-lz4-t0", path("file-lz4-t0"), 0, "lz4"),
        BackendConfig("file-gzip", path("file-gzip"), THRESHOLD, "gzip"),
        # (compression "none" is covered on S3: every process costs ~7 s of CPU to warm up)
        # Invalid settings: each must stop the task (or Airflow) with a message naming it.
        BackendConfig("bad-compression", path("bad-compression"), THRESHOLD, "zip"),
        BackendConfig(
            "misspelled", path("misspelled"), THRESHOLD, "zstd", {"AIRFLOW__XCOMSTORE__TRESHOLD": "5"}
        ),
        BackendConfig("bad-threshold", path("bad-threshold"), "lots", "zstd"),
    ]


def _s3_configs(s3: S3Access) -> list[BackendConfig]:
    def path(name: str) -> str:
        return f"s3://{s3.conn_id}@{s3.bucket}/xcs-{name}"

    return [
        BackendConfig("s3-zstd", path("s3-zstd"), THRESHOLD, "zstd", s3.env),
        BackendConfig("s3-none-t0", path("s3-none-t0"), 0, "none", s3.env),
    ]


# -- Airflow ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def airflow_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowLauncher]:
    launcher = AirflowLauncher(
        tmp_path_factory.mktemp("airflow"), os.environ.get("XCOMSTORE_TEST_DB", "sqlite")
    )
    yield launcher
    launcher.close()


@pytest.fixture(scope="session")
def file_targets(airflow_launcher: AirflowLauncher) -> dict[str, Target]:
    targets = {}
    for config in _file_configs(airflow_launcher.root):
        store_root = Path(config.path[len("file://") :])
        store_root.mkdir(parents=True, exist_ok=True)
        targets[config.name] = Target(config, airflow_launcher.start(config), FileStoreView(store_root))
    return targets


@pytest.fixture(scope="session")
def s3_targets(airflow_launcher: AirflowLauncher, s3_access: S3Access) -> dict[str, Target]:
    targets = {}
    for config in _s3_configs(s3_access):
        view = S3StoreView(s3_access.filesystem(), config.path)
        targets[config.name] = Target(config, airflow_launcher.start(config), view)
    return targets


@pytest.fixture(scope="session", autouse=True)
def _start_early(request: pytest.FixtureRequest) -> None:
    """Start every process the selected tests need at once, before the first test.

    Once warm, the tests keep about one core busy; processes started now warm up on the other
    one instead of later on the critical path.
    """
    here = Path(__file__).parent
    items = [item for item in request.session.items if here in item.path.parents]
    if not any(item.get_closest_marker("airflow") for item in items):
        return
    if any(item.get_closest_marker("airflow") and not item.get_closest_marker("s3") for item in items):
        request.getfixturevalue("file_targets")
    if any(item.get_closest_marker("s3") for item in items):
        # A missing S3 server skips (or in CI fails) the S3 tests themselves, not this fixture.
        with contextlib.suppress(pytest.skip.Exception, pytest.fail.Exception):
            request.getfixturevalue("s3_targets")


@pytest.fixture(scope="session")
def all_targets(request: pytest.FixtureRequest) -> Any:
    """Look a target up by name, starting the S3 ones only when an S3 test asks for them."""

    def get(name: str) -> Target:
        group = "s3_targets" if name.startswith("s3-") else "file_targets"
        targets: dict[str, Target] = request.getfixturevalue(group)
        return targets[name]

    return get


@pytest.fixture(scope="session")
def types_runs(request: pytest.FixtureRequest) -> Any:
    """The xcs_types DAG run once per configuration (runs of one store kind go in parallel)."""
    cache: dict[str, RunResult] = {}

    def get(name: str) -> RunResult:
        if name not in cache:
            group = "s3_targets" if name.startswith("s3-") else "file_targets"
            targets: dict[str, Target] = request.getfixturevalue(group)
            names = [n for n in targets if n in TYPES_CONFIGS]
            pending = {n: targets[n].process.submit("dag_test", dag_id="xcs_types", env={}) for n in names}
            cache.update({n: p.result() for n, p in pending.items()})
        return cache[name]

    return get


TYPES_CONFIGS = ("file-zstd", "file-lz4-t0", "file-gzip", "s3-zstd", "s3-none-t0")


# -- S3 --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Access:
    """What the tests need from the S3 server fixtures."""

    endpoint_url: str
    conn_id: str
    bucket: str
    env: dict[str, str]  # the Airflow connection (and AWS variables) for the Airflow processes
    storage_options: dict[str, Any]  # for s3fs in the test process

    def filesystem(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options)


CONN_ID = "xcs_s3"
SERVERS_PLUGIN = "tests.servers.fixtures"  # the name tests/servers registers its fixtures under


def pytest_configure(config: pytest.Config) -> None:
    # Make the tests/servers fixtures (s3_server, ...) available here too, as that folder's own
    # conftest does for itself, unless a top-level conftest has registered them already.
    if not config.pluginmanager.has_plugin(SERVERS_PLUGIN):
        from servers import fixtures

        config.pluginmanager.register(fixtures, SERVERS_PLUGIN)


@pytest.fixture(scope="session")
def s3_access(s3_server: Any) -> S3Access:
    """One bucket for the session: the Airflow processes are configured once, with its name.

    (tests/servers' `s3_bucket` is per test, too short-lived for a session's processes.)
    """
    from servers import fixtures, s3

    fixtures.require(s3.check_airflow_installed)
    return S3Access(
        endpoint_url=s3_server.endpoint_url,
        conn_id=CONN_ID,
        bucket=s3_server.create_bucket(fixtures.unique_name("xcs-it")),
        env=s3_server.airflow_env(CONN_ID),
        storage_options=s3_server.storage_options(),
    )
