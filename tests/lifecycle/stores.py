"""Helpers and fixtures shared by tests/lifecycle and tests/faults: stores on real locations,
raw access to the bytes behind a URI (bypassing xcomstore), damage, and the CLI in-process.

Both folders' conftests import the fixtures from here.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.servers.s3 import S3Server

from xcomstore import cli
from xcomstore.core.settings import Settings
from xcomstore.core.store import FilesystemOpener, XComStore
from xcomstore.format import container
from xcomstore.identity import Origin
from xcomstore.storage.location import fsspec_filesystem, without_connection
from xcomstore.storage.retry import RetryPolicy

#: botocore settings that make a dead or stalled server fail fast instead of after minutes.
BOTO_CONFIG: dict[str, Any] = {"connect_timeout": 1, "read_timeout": 2, "retries": {"max_attempts": 1}}
RUN_ID = "manual__2026-01-02T03:04:05+00:00"


# -- stores ----------------------------------------------------------------------------------
def s3_opener(
    options: dict[str, Any], block_size: int | None = None, read_timeout: float | None = None
) -> FilesystemOpener:
    """Resolve s3:// URLs to the test server with short timeouts (s3fs, no Airflow); others by fsspec."""
    config = {**BOTO_CONFIG, **({"read_timeout": read_timeout} if read_timeout else {})}

    def open_url(url: str) -> tuple[Any, str]:
        plain = without_connection(url)
        if not plain.startswith("s3://"):
            fs, root = fsspec_filesystem(url)
            return fs, root
        import s3fs

        extra = {"default_block_size": block_size} if block_size else {}
        fs = s3fs.S3FileSystem(skip_instance_cache=True, config_kwargs=dict(config), **options, **extra)
        fs.retries = 1  # s3fs's own retry loop, on top of botocore's
        return fs, plain[len("s3://") :]

    return open_url


def make_store(
    paths: Sequence[str], opener: FilesystemOpener = fsspec_filesystem, **options: str
) -> XComStore:
    """An XComStore over `paths`; everything offloaded, one quick retry unless `options` say otherwise."""
    raw = {"path": ", ".join(paths), "threshold": "0", "retries": "1", "retry_timeout": "10", **options}
    store = XComStore.from_settings(Settings.from_mapping(raw), opener=opener)
    for location in store.locations:
        location.retry = RetryPolicy(location.retry.retries, location.retry.timeout, first_wait=0.05)
    return store


def origin(
    key: str = "return_value", task: str = "task", dag: str = "lifecycle", map_index: int = -1
) -> Origin:
    return Origin(dag_id=dag, run_id=RUN_ID, task_id=task, map_index=map_index, key=key)


def same(back: Any, value: Any) -> bool:
    """Equal values of the same type (DataFrames and arrays compared whole)."""
    if type(back) is not type(value):
        return False
    if hasattr(value, "equals"):
        return bool(back.equals(value))
    if hasattr(value, "dtype"):
        return back.dtype == value.dtype and back.shape == value.shape and bool((back == value).all())
    return bool(back == value)


def uris(stored: dict[str, Any]) -> list[str]:
    """Every copy a stored reference names, primary first."""
    return [stored["uri"], *stored.get("replicas", [])]


# -- raw bytes behind URIs ---------------------------------------------------------------------
class RawObjects:
    """Reads and changes objects without xcomstore: local files, and S3 through boto3."""

    def __init__(self, s3: Callable[[], S3Server] | None = None) -> None:
        self._server = s3
        self._client: Any = None

    @staticmethod
    def _s3_key(uri: str) -> tuple[str, str]:
        parts = urlsplit(uri)
        return parts.netloc.rpartition("@")[2], parts.path.lstrip("/")

    @staticmethod
    def _file(uri: str) -> Path:
        assert uri.startswith("file://"), uri
        return Path(uri[len("file://") :])

    def read(self, uri: str) -> bytes:
        if uri.startswith("s3://"):
            bucket, key = self._s3_key(uri)
            return bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return self._file(uri).read_bytes()

    def write(self, uri: str, data: bytes) -> None:
        if uri.startswith("s3://"):
            bucket, key = self._s3_key(uri)
            self._s3.put_object(Bucket=bucket, Key=key, Body=data)
            return
        self._file(uri).parent.mkdir(parents=True, exist_ok=True)
        self._file(uri).write_bytes(data)

    def delete(self, uri: str) -> None:
        if uri.startswith("s3://"):
            bucket, key = self._s3_key(uri)
            self._s3.delete_object(Bucket=bucket, Key=key)
            return
        self._file(uri).unlink()

    def exists(self, uri: str) -> bool:
        return uri in self.files(uri.rsplit("/", 1)[0])

    def files(self, url: str) -> list[str]:
        """Every object below a location URL as a URI, hidden temporary files included."""
        if url.startswith("s3://"):
            bucket, prefix = self._s3_key(url)
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            base = url[: len(url) - len(prefix)] if prefix else url.rstrip("/") + "/"
            return sorted(base + item["Key"] for page in pages for item in page.get("Contents", []))
        root = self._file(url)
        found = root.rglob("*") if root.exists() else iter(())
        return sorted(f"file://{p}" for p in found if p.is_file())

    def uploads_in_progress(self, url: str) -> list[str]:
        """Multipart uploads started and neither completed nor aborted (S3 only)."""
        bucket, _ = self._s3_key(url)
        return [u["Key"] for u in self._s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    @property
    def _s3(self) -> Any:
        if self._client is None:
            assert self._server is not None, "this RawObjects has no S3 server"
            self._client = self._server().client()
        return self._client


# -- damage ----------------------------------------------------------------------------------
def payload_span(data: bytes) -> tuple[int, int]:
    start = container.PREFIX_SIZE + container.parse_prefix(data[: container.PREFIX_SIZE])
    return start, len(data) - container.SEAL_SIZE


def flip_payload_byte(data: bytes) -> bytes:
    start, end = payload_span(data)
    middle = (start + end) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def truncate(data: bytes) -> bytes:
    return data[: len(data) - 100]


def future_version(data: bytes) -> bytes:
    """The same object, claiming a format version newer than this xcomstore reads."""
    version = struct.pack(">H", container.FORMAT_VERSION + 1)
    return data[: len(container.MAGIC)] + version + data[len(container.MAGIC) + 2 :]


# -- the CLI ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The JSON document printed; log lines (Airflow's logging writes to stdout) are skipped."""
        lines = self.out.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line[:1] in ("{", "["))
        document, _ = json.JSONDecoder().raw_decode("".join(lines[start:]))
        return document


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """`xcomstore ARGS` through xcomstore.cli.main, in this process."""
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


# -- fixtures (imported by both conftests) ---------------------------------------------------
@pytest.fixture
def file_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/store"


@pytest.fixture
def s3_url(s3_server: S3Server, s3_bucket: str, s3_conn_id: str) -> str:
    """s3://<conn>@<fresh bucket>/xcom; the connection is set for Airflow's ObjectStoragePath too."""
    return s3_server.url(s3_conn_id, s3_bucket, "xcom")


@pytest.fixture
def s3_fast(s3_server: S3Server) -> FilesystemOpener:
    return s3_opener(s3_server.storage_options())


@pytest.fixture
def raw(request: pytest.FixtureRequest) -> RawObjects:
    """Raw access to local files, and to the S3 server once a URI asks for it."""
    return RawObjects(lambda: request.getfixturevalue("s3_server"))


@pytest.fixture
def s3_outage(s3_server: S3Server) -> Iterator[S3Server]:
    """The S3 server, to stop in the test; it runs again (empty) afterwards."""
    yield s3_server
    s3_server.start()


@dataclass(frozen=True)
class Place:
    """One location for a parametrized test: its URL and how to open it."""

    kind: str
    url: str
    opener: FilesystemOpener


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def place(request: pytest.FixtureRequest) -> Place:
    """A local folder, then a fresh S3 bucket (tests using it run once for each)."""
    if request.param == "file":
        return Place("file", request.getfixturevalue("file_url"), fsspec_filesystem)
    url = request.getfixturevalue("s3_url")
    return Place("s3", url, request.getfixturevalue("s3_fast"))
