"""Pytest fixtures for real object-store servers on 127.0.0.1.

Register with ``pytest_plugins = ["tests.servers.fixtures"]`` in the top-level conftest.

- ``s3_server``, ``azure_server``, ``gcs_server`` (session): a running server's handle.
- ``s3_bucket``, ``azure_container``, ``gcs_bucket`` (function): a fresh, empty bucket.
- ``s3_conn_id``, ``azure_conn_id``, ``gcs_conn_id`` (function): a fresh Airflow connection id,
  set as ``AIRFLOW_CONN_<ID>`` for the test only, for ``ObjectStoragePath(server.url(...))``.

Missing software skips, naming what is missing, except when CI=true: then it fails.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import pytest

from . import azure, gcs, s3
from .azure import AzureServer
from .gcs import GcsServer
from .process import INSTALL_HINT, ServerNotInstalledError, conn_env_var
from .s3 import S3Server

T = TypeVar("T")


class _Server(Protocol):
    def airflow_conn_json(self) -> str: ...
    def create_bucket(self, name: str) -> str: ...
    def start(self) -> float: ...


def require(check: Callable[[], T]) -> T:
    """Run an install check; on missing software skip the test, or fail it when CI=true."""
    try:
        return check()
    except ServerNotInstalledError as exc:
        message = f"{exc} — {INSTALL_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def unique_name(prefix: str = "xcs") -> str:
    """A name valid as an S3 bucket, Azure container, GCS bucket and Airflow conn id."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    require(s3.check_installed)
    server = s3.start_s3(tmp_path_factory.mktemp("s3-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    require(azure.check_installed)
    # azure-core logs every request and response at INFO, which Airflow's logging shows.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    server = azure.start_azure(tmp_path_factory.mktemp("azure-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    require(gcs.check_installed)
    server = gcs.start_gcs(tmp_path_factory.mktemp("gcs-server"))
    try:
        yield server
    finally:
        server.stop()


def _fresh_bucket(server: _Server) -> str:
    server.start()  # no-op while running; revives a server an earlier (fault) test stopped
    return server.create_bucket(unique_name())


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    return _fresh_bucket(s3_server)


@pytest.fixture
def azure_container(azure_server: AzureServer) -> str:
    return _fresh_bucket(azure_server)


@pytest.fixture
def gcs_bucket(gcs_server: GcsServer) -> str:
    return _fresh_bucket(gcs_server)


def _airflow_conn(server: _Server, kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A connection id unique to this test, so Airflow's per-connection filesystem cache
    (attach() keys it by protocol and conn id) never hands one test another test's settings."""
    conn_id = unique_name(f"xcs_{kind}").replace("-", "_")
    monkeypatch.setenv(conn_env_var(conn_id), server.airflow_conn_json())
    yield conn_id
    forget_airflow_stores(conn_id)


def forget_airflow_stores(conn_id: str) -> None:
    """Drop Airflow's cached ObjectStore objects (and so filesystems) for `conn_id`."""
    try:
        from airflow.sdk.io import store
    except ImportError:
        return
    cache = getattr(store, "_STORE_CACHE", {})
    for alias in [a for a, s in cache.items() if getattr(s, "conn_id", None) == conn_id]:
        cache.pop(alias, None)


@pytest.fixture
def s3_conn_id(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require(s3.check_airflow_installed)
    yield from _airflow_conn(s3_server, "s3", monkeypatch)


@pytest.fixture
def azure_conn_id(azure_server: AzureServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require(azure.check_airflow_installed)
    yield from _airflow_conn(azure_server, "azure", monkeypatch)


@pytest.fixture
def gcs_conn_id(gcs_server: GcsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require(gcs.check_airflow_installed)
    yield from _airflow_conn(gcs_server, "gcs", monkeypatch)
