"""bench/s3_front.py answers GETs from moto's copy of an object as moto itself would: the
projection benchmark's S3 figures rest on it (tests/unit: no fixtures, it starts its own)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.s3server import MotoServer

DATA = os.urandom(20_000_001)  # more than two of the front's 8 MiB pieces, and odd


@pytest.fixture(scope="module", params=[True, False], ids=["direct-gets", "moto-gets"])
def fs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = MotoServer(Path(tmp_path_factory.mktemp("front")) / "moto.log", direct_gets=request.param)
    try:
        server.fs.mkdir("front")
        server.fs.pipe("front/object", DATA)
        server.fs.pipe("front/empty", b"")
        yield server.fs
    finally:
        server.stop()


def test_whole_objects_and_ranges_read_as_stored(fs: Any) -> None:
    assert fs.cat_file("front/object") == DATA
    assert fs.cat_file("front/object", start=5, end=1000) == DATA[5:1000]
    assert fs.cat_file("front/object", start=len(DATA) - 10) == DATA[-10:]
    assert fs.cat_file("front/empty") == b""
    with fs.open("front/object", "rb", block_size=3_000_000) as file:
        file.seek(9_000_000)
        assert file.read(4_000_000) == DATA[9_000_000:13_000_000]


def test_a_read_answered_by_the_front_carries_moto_s_headers(fs: Any) -> None:
    whole = fs.call_s3("get_object", Bucket="front", Key="object")
    part = fs.call_s3("get_object", Bucket="front", Key="object", Range="bytes=10-19")
    assert whole["ETag"] == part["ETag"] == fs.info("front/object")["ETag"]
    assert whole["ContentLength"] == len(DATA)
    assert part["ContentLength"] == 10
    assert part["ContentRange"] == f"bytes 10-19/{len(DATA)}"
    assert whole["ContentType"] == "binary/octet-stream"


def test_missing_objects_and_buckets_are_moto_s_errors(fs: Any) -> None:
    with pytest.raises(FileNotFoundError):
        fs.cat_file("front/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file("nobucket/missing")


def test_a_conditional_get_is_moto_s_to_answer(fs: Any) -> None:
    etag = fs.info("front/object")["ETag"]
    with pytest.raises(OSError, match="304"):  # s3fs's for botocore's ClientError
        fs.call_s3("get_object", Bucket="front", Key="object", IfNoneMatch=etag)
