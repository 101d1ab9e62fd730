"""allowed_types and max_size on real stores: a rejected push names the key, the type or size and
the setting, and writes nothing; a value that outgrows max_size while streaming is aborted."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.lifecycle.stores import Place, RawObjects, make_store, origin, s3_opener
from tests.servers.s3 import S3Server

from xcomstore.errors import RejectedValueError

DISALLOWED = {
    "array-when-json-only": ("json", np.arange(100), "numpy.ndarray (array)"),
    "bytes-when-tables-and-arrays": ("table, array", b"raw" * 100, "bytes (bytes)"),
    "dict-when-only-dataframes": ("pandas.DataFrame", {"a": 1}, "dict (json)"),
}


@pytest.mark.parametrize("case", DISALLOWED)
def test_disallowed_type_is_rejected_and_nothing_is_written(place: Place, raw: RawObjects, case: str) -> None:
    allowed, value, described = DISALLOWED[case]
    store = make_store([place.url], place.opener, allowed_types=allowed)
    with pytest.raises(RejectedValueError) as info:
        store.push(value, origin(key="my_output"))
    message = str(info.value)
    assert info.value.xcom == origin(key="my_output"), "the error carries the XCom it refused"
    for part in (
        f"XCom {origin(key='my_output')}:",
        described,
        "allowed_types",
        "AIRFLOW__XCOMSTORE__ALLOWED_TYPES",
        "Nothing was stored",
    ):
        assert part in message, f"{part!r} missing from: {message}"
    assert raw.files(place.url) == []


TOO_LARGE = {
    "bytes": b"x" * 20_000,
    "array": np.zeros(2500),  # 20 000 bytes
    "json": {"text": "y" * 20_000},
}


@pytest.mark.parametrize("kind", TOO_LARGE)
def test_too_large_value_is_rejected_before_writing(place: Place, raw: RawObjects, kind: str) -> None:
    store = make_store([place.url], place.opener, max_size="10KB")
    with pytest.raises(RejectedValueError) as info:
        store.push(TOO_LARGE[kind], origin(key="big_one"))
    message = str(info.value)
    assert info.value.xcom == origin(key="big_one"), "the error carries the XCom it refused"
    for part in (
        f"XCom {origin(key='big_one')}:",
        "20.0 KB",
        "max_size = 10.0 KB",
        "AIRFLOW__XCOMSTORE__MAX_SIZE",
        "Nothing was stored",
    ):
        assert part in message, f"{part!r} missing from: {message}"
    assert raw.files(place.url) == []


def growing_frame(rows: int) -> pd.DataFrame:
    """Strings in an object column: the size estimate sees 8 bytes a row, the stream ~1 KB."""
    return pd.DataFrame({"text": pd.Series([f"{i:08d}" + "z" * 1000 for i in range(rows)], dtype=object)})


@pytest.fixture
def streaming_place(place: Place, request: pytest.FixtureRequest) -> Place:
    """On S3 with 5 MiB parts, so the value is a multipart upload by the time it is refused."""
    if place.kind != "s3":
        return place
    server: S3Server = request.getfixturevalue("s3_server")
    return Place(place.kind, place.url, s3_opener(server.storage_options(), block_size=5 << 20))


def test_value_growing_past_max_size_while_streaming_is_aborted(
    streaming_place: Place, raw: RawObjects
) -> None:
    frame = growing_frame(24_000)  # ~24 MB as Arrow: batches of ~4 MB get written first
    store = make_store([streaming_place.url], streaming_place.opener, compression="none", max_size="18MB")
    where = origin(key="grows")
    with pytest.raises(RejectedValueError, match="size limit") as info:
        store.push(frame, where)
    assert str(where) in str(info.value)
    assert raw.files(streaming_place.url) == []
    if streaming_place.kind == "s3":
        assert raw.uploads_in_progress(streaming_place.url) == [], "the multipart upload was not aborted"


def test_streaming_rejection_names_the_setting(file_url: str) -> None:
    store = make_store([file_url], compression="none", max_size="1MB")
    with pytest.raises(RejectedValueError) as info:
        store.push(growing_frame(2000), origin(key="grows"))
    assert "max_size" in str(info.value)


def test_value_at_the_limit_is_stored(place: Place) -> None:
    store = make_store([place.url], place.opener, max_size="10KB", allowed_types="bytes")
    value: Any = b"x" * 10_000
    assert store.pull(store.push(value, origin())) == value
