"""Each server fixture works end to end: plain fsspec, Airflow's ObjectStoragePath through an
``AIRFLOW_CONN_<ID>`` connection (JSON and URI forms), and a stop/start on the same port."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import fsspec
import pytest

from .fixtures import require
from .process import ServerNotInstalledError, answers_http, conn_env_var

KINDS = ["s3", "azure", "gcs"]
BUCKET_FIXTURE = {"s3": "s3_bucket", "azure": "azure_container", "gcs": "gcs_bucket"}


@dataclass(frozen=True)
class Store:
    """One server kind with a fresh bucket, as the parametrized tests see it."""

    server: Any
    bucket: str

    def fs(self) -> fsspec.AbstractFileSystem:
        # A new instance: fsspec's instance cache must not carry a client across tests.
        options = self.server.storage_options()
        return fsspec.filesystem(self.server.protocol, skip_instance_cache=True, **options)


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest) -> Store:
    kind: str = request.param
    server = request.getfixturevalue(f"{kind}_server")
    return Store(server=server, bucket=request.getfixturevalue(BUCKET_FIXTURE[kind]))


def test_fsspec_round_trip(store: Store) -> None:
    fs = store.fs()
    fs.pipe(f"{store.bucket}/dir/hello.bin", b"\x00hello\xff")
    assert fs.cat(f"{store.bucket}/dir/hello.bin") == b"\x00hello\xff"
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(f"{store.bucket}/dir")] == ["hello.bin"]


def test_object_storage_path_round_trip(store: Store, request: pytest.FixtureRequest) -> None:
    from airflow.sdk import ObjectStoragePath

    conn_id = request.getfixturevalue(f"{_kind(store)}_conn_id")
    path = ObjectStoragePath(store.server.url(conn_id, store.bucket, "via-airflow/x.txt"))
    path.write_text("through Airflow")
    assert path.read_text() == "through Airflow"
    # It went to this server, not somewhere else: plain fsspec sees the same object.
    assert store.fs().cat(f"{store.bucket}/via-airflow/x.txt") == b"through Airflow"


def test_connection_uri_form(
    store: Store, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import ObjectStoragePath

    conn_id = request.getfixturevalue(f"{_kind(store)}_conn_id")
    monkeypatch.setenv(conn_env_var(conn_id), store.server.airflow_conn_uri())
    store.fs().pipe(f"{store.bucket}/k", b"uri")
    assert ObjectStoragePath(store.server.url(conn_id, store.bucket, "k")).read_bytes() == b"uri"


def test_conn_env_is_per_test(store: Store) -> None:
    """The previous tests' AIRFLOW_CONN_* variables are gone (monkeypatch undid them)."""
    assert not [name for name in os.environ if name.startswith("AIRFLOW_CONN_XCS_")]


def test_stop_and_start_on_same_port(store: Store) -> None:
    server = store.server
    port, url = server.port, server.endpoint_url
    server.stop()
    assert not answers_http(url)
    server.start()
    assert server.port == port
    assert answers_http(url)
    store.fs().pipe(f"{store.bucket}/after-restart", b"ok")  # the bucket is usable again


def test_missing_software_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-server.*install-servers"):
        require(_missing)


def test_missing_software_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"no-such-server.*install-servers"):
        require(_missing)


def _missing() -> None:
    raise ServerNotInstalledError("no-such-server")


def _kind(store: Store) -> str:
    return {"s3": "s3", "abfs": "azure", "gs": "gcs"}[store.server.protocol]
