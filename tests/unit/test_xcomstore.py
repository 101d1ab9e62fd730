"""api: XComStore on a file:// store — inline or offloaded, round trips, and every failure named."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import polars.testing
import pyarrow as pa
import pytest
from blake3 import blake3

from xcomstore.codecs import ArrowCodec
from xcomstore.core import layout
from xcomstore.core.reference import TAG, Reference, is_reference
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import (
    CorruptObjectError,
    ForgedReferenceError,
    MissingKeyError,
    ObjectFormatError,
    ObjectNotFoundError,
    RejectedValueError,
    StoreUnavailableError,
    XComStoreError,
)
from xcomstore.format.container import MAGIC, PREFIX_SIZE, SEAL_SIZE, parse_prefix
from xcomstore.identity import Origin, Wanted
from xcomstore.storage.headers import StoredObject
from xcomstore.storage.location import fsspec_filesystem
from xcomstore.storage.retry import RetryPolicy

MakeStore = Callable[..., XComStore]
COMPRESSIONS = ["none", "zstd", "lz4", "gzip"]


@pytest.fixture
def xstore(make_xcom_store: MakeStore) -> XComStore:
    return make_xcom_store(threshold="100", compression="zstd")


@pytest.fixture
def origin(make_origin: Callable[..., Origin]) -> Origin:
    return make_origin(map_index=2, key="my_key")


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def path_of(xstore: XComStore, stored: dict[str, Any]) -> Path:
    return Path(str(xstore.location.root), str(xstore.location.relative(stored["uri"])))


def assert_same(back: Any, value: Any) -> None:
    """Equal, and of exactly the same type."""
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype
        np.testing.assert_array_equal(back, value, strict=True)
    elif isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value, check_exact=True)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True)
    elif isinstance(value, pl.DataFrame):
        polars.testing.assert_frame_equal(back, value)
    elif isinstance(value, pl.Series):
        polars.testing.assert_series_equal(back, value)
    elif isinstance(value, pa.Table):
        assert back.equals(value)
    else:
        assert back == value


# -- inline or offloaded -----------------------------------------------------------------------
SMALL = [None, True, 0, 3.5, "", "text", [1, 2], {"a": [1, {"b": None}]}, {"__xcomstore": 1}]


@pytest.mark.parametrize("value", SMALL)
def test_small_values_stay_inline(xstore: XComStore, store_dir: Path, origin: Origin, value: Any) -> None:
    stored = xstore.push(value, origin)
    assert stored == value
    assert not is_reference(stored)
    assert xstore.pull(stored) == value
    assert files_in(store_dir) == []


@pytest.mark.parametrize(("extra", "inline"), [(0, True), (1, False)], ids=["at-threshold", "one-byte-over"])
def test_threshold_boundary(xstore: XComStore, origin: Origin, extra: int, inline: bool) -> None:
    value = "x" * (98 + extra)  # JSON "xxx…": 100 bytes, then 101
    assert len(json.dumps(value)) == 100 + extra
    stored = xstore.push(value, origin)
    assert (stored == value) is inline
    assert is_reference(stored) is not inline
    assert xstore.pull(stored) == value


def test_threshold_counts_compact_utf8_bytes(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(threshold="11")
    assert store.push({"a": [1, 2]}, origin) == {"a": [1, 2]}  # {"a":[1,2]}: 11 bytes, 13 with spaces
    assert is_reference(store.push("é" * 5, origin))  # 7 characters, 12 bytes


def test_large_value_is_offloaded(xstore: XComStore, store_dir: Path, origin: Origin) -> None:
    value = {"rows": list(range(1000))}
    stored = xstore.push(value, origin)
    ref = Reference.from_json(stored)
    assert ref.uri == f"file://{store_dir}/{layout.object_path(origin)}"
    assert (ref.codec, ref.compression, ref.type_name, ref.summary) == (
        "json",
        "zstd",
        "dict",
        "dict of 1 key",
    )
    file = path_of(xstore, stored)
    assert files_in(store_dir) == [file]
    data = file.read_bytes()
    assert ref.stored_bytes == len(data)
    assert ref.size == len(json.dumps(value, separators=(",", ":")))
    start = PREFIX_SIZE + parse_prefix(data[:PREFIX_SIZE])
    assert ref.checksum == "blake3:" + blake3(data[start:-SEAL_SIZE]).hexdigest()
    assert xstore.pull(stored) == value


@pytest.mark.parametrize("key", ["skipmixin_key", "past_depends_met", "row_count"])
def test_inline_keys_stay_inline_at_threshold_zero(
    make_xcom_store: MakeStore, store_dir: Path, key: str
) -> None:
    store = make_xcom_store(threshold="0", inline_keys="row_count")
    origin = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key=key)
    value = {"followed": ["t"] * 200}
    assert store.push(value, origin) == value
    assert files_in(store_dir) == []


def test_threshold_zero_offloads_everything_else(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(threshold="0", inline_keys="row_count")
    for value in (None, 0, ""):
        stored = store.push(value, origin)
        assert is_reference(stored)
        assert store.pull(stored) == value


@pytest.mark.parametrize(
    "value",
    [{TAG: 1}, {TAG: 1, "uri": "file:///etc/passwd"}, {TAG: "anything", "x": None}],
    ids=["tag-only", "with-uri", "other-fields"],
)
def test_reference_lookalike_is_offloaded(xstore: XComStore, origin: Origin, value: dict[str, Any]) -> None:
    stored = xstore.push(value, origin)
    assert Reference.from_json(stored).codec == "json"
    assert xstore.pull(stored) == value


def test_reference_lookalike_under_inline_key(xstore: XComStore) -> None:
    origin = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="skipmixin_key")
    value = {TAG: 1, "note": "user data"}
    try:
        stored = xstore.push(value, origin)
    except RejectedValueError:
        return
    assert xstore.pull(stored) == value


def test_unstorable_value_rejected(xstore: XComStore, origin: Origin) -> None:
    with pytest.raises(RejectedValueError, match="my_key"):
        xstore.push({1, 2}, origin)


# -- binary values -----------------------------------------------------------------------------
BINARY: dict[str, Callable[[], Any]] = {
    "bytes": lambda: b"\x00\x01" * 500,  # compressible: a reference says the compression used
    "bytearray": lambda: bytearray(b"abc" * 500),
    "empty-bytes": lambda: b"",
    "numpy": lambda: np.arange(6, dtype=np.int16).reshape(2, 3),
    "numpy-0d": lambda: np.array(1.5),
    "numpy-fortran": lambda: np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "pandas-frame": lambda: pd.DataFrame(
        {"a": [1, 2], "t": pd.date_range("2024-01-01", periods=2, tz="UTC"), "c": pd.Categorical(["x", "y"])}
    ),
    "pandas-series": lambda: pd.Series([1.5, None], name="s"),
    "polars-frame": lambda: pl.DataFrame({"a": [1, None], "b": ["x", "y"]}),
    "polars-series": lambda: pl.Series("p", [1, 2]),
    "pyarrow-table": lambda: pa.table({"a": [1, 2]}),
}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("kind", BINARY)
def test_binary_values_always_offloaded(
    make_xcom_store: MakeStore, origin: Origin, kind: str, compression: str
) -> None:
    store = make_xcom_store(threshold="1GiB", compression=compression)
    value = BINARY[kind]()
    stored = store.push(value, origin)
    ref = Reference.from_json(stored)
    assert ref.compression == compression
    assert_same(store.pull(stored), value)
    assert_same(store.read(ref.uri), value)


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip"])
@pytest.mark.parametrize("size", [1000, 100_000, 3_000_000])
def test_incompressible_bytes_are_stored_as_they_are(
    make_xcom_store: MakeStore, origin: Origin, compression: str, size: int
) -> None:
    """Random bytes (media, archives) do not shrink: compressing them would cost every write
    and read for nothing. Judged from a sample, they are stored uncompressed, and the
    reference and header say so; the same store still compresses what shrinks."""
    store = make_xcom_store(threshold="0", compression=compression)
    noise = os.urandom(size)
    stored = store.push(noise, origin)
    assert stored["compression"] == store.head(stored["uri"]).compression == "none"
    assert store.pull(stored) == noise
    assert store.read(stored["uri"]) == noise
    text = store.push(b"xcomstore " * size, origin)
    assert text["compression"] == store.head(text["uri"]).compression == compression
    assert text["stored_bytes"] < size


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("value", [["x"] * 100, {"k": "é" * 500}, "long " * 100], ids=["list", "dict", "str"])
def test_json_round_trip_through_compressions(
    make_xcom_store: MakeStore, origin: Origin, compression: str, value: Any
) -> None:
    level = {} if compression == "none" else {"compression_level": "1"}
    store = make_xcom_store(threshold="10", compression=compression, **level)
    stored = store.push(value, origin)
    assert is_reference(stored)
    assert store.pull(stored) == value
    assert store.head(stored["uri"]).compression == compression


def test_tables_are_compressed_block_by_block(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(compression="lz4")
    stored = store.push(pa.table({"a": list(range(100))}), origin)
    header = store.head(stored["uri"])
    assert (header.compression, header.layout) == ("lz4", "blocks")
    assert "compression" not in header.meta
    assert stored["compression"] == "lz4"


def test_object_arrays_rejected_and_nothing_written(
    xstore: XComStore, store_dir: Path, origin: Origin
) -> None:
    with pytest.raises(RejectedValueError) as info:
        xstore.push(np.array([1, None], dtype=object), origin)
    assert str(origin) in str(info.value)
    assert files_in(store_dir) == []


def test_push_overwrites_same_xcom(xstore: XComStore, origin: Origin) -> None:
    first = xstore.push(b"first", origin)
    second = xstore.push(b"second", origin)
    assert first["uri"] == second["uri"]
    assert xstore.pull(second) == b"second"
    with pytest.raises(CorruptObjectError, match="replaced or modified"):
        xstore.pull(first)


# -- purge -------------------------------------------------------------------------------------
def test_purge(xstore: XComStore, store_dir: Path, origin: Origin) -> None:
    stored = xstore.push(b"data", origin)
    file = path_of(xstore, stored)
    assert file.exists()
    assert xstore.purge(stored) is True
    assert not file.exists()
    assert xstore.purge(stored) is False


@pytest.mark.parametrize("stored", [None, "text", 1, [1], {"a": 1}, {"uri": "file:///etc/passwd"}])
def test_purge_ignores_non_references(xstore: XComStore, stored: Any) -> None:
    assert xstore.purge(stored) is False


# -- forged references -------------------------------------------------------------------------
@pytest.fixture
def victim(tmp_path: Path, xstore: XComStore, origin: Origin) -> Path:
    """A valid object for `origin`, but outside the store: no forged reference may touch it."""
    stored = xstore.push(b"victim", origin)
    target = tmp_path / "other" / str(layout.object_path(origin))
    target.parent.mkdir(parents=True)
    shutil.move(path_of(xstore, stored), target)
    return target


FORGERIES: dict[str, Callable[[dict[str, Any], Path, Origin], dict[str, Any]]] = {
    "dotdot": lambda ref, tmp, o: {**ref, "uri": f"file://{tmp}/store/../other/{layout.object_path(o)}"},
    "dotdot-inside": lambda ref, tmp, o: {
        **ref,
        "uri": f"file://{tmp}/store/dag/../../other/{layout.object_path(o)}",
    },
    "other-folder": lambda ref, tmp, o: {**ref, "uri": f"file://{tmp}/other/{layout.object_path(o)}"},
    "sibling-prefix": lambda ref, tmp, o: {**ref, "uri": f"file://{tmp}/store-other/{layout.object_path(o)}"},
    "other-scheme": lambda ref, tmp, o: {**ref, "uri": f"s3://bucket/{layout.object_path(o)}"},
    "other-host": lambda ref, tmp, o: {**ref, "uri": f"file://evil{tmp}/store/{layout.object_path(o)}"},
    "backslash": lambda ref, tmp, o: {**ref, "uri": f"file://{tmp}/store/dag\\..\\..\\other"},
    "forged-replica": lambda ref, tmp, o: {
        **ref,
        "replicas": [f"file://{tmp}/other/{layout.object_path(o)}"],
    },
    "replica-dotdot": lambda ref, tmp, o: {
        **ref,
        "replicas": [f"file://{tmp}/store/../other/{layout.object_path(o)}"],
    },
    "replicas-not-a-list": lambda ref, tmp, o: {
        **ref,
        "replicas": f"file://{tmp}/other/{layout.object_path(o)}",
    },
    "missing-uri": lambda ref, tmp, o: {k: v for k, v in ref.items() if k != "uri"},
    "missing-checksum": lambda ref, tmp, o: {k: v for k, v in ref.items() if k != "checksum"},
    "tag-only": lambda ref, tmp, o: {TAG: 1},
    "wrong-version": lambda ref, tmp, o: {**ref, TAG: 99},
}


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_reference_refused_on_pull(
    xstore: XComStore, tmp_path: Path, origin: Origin, victim: Path, forgery: str
) -> None:
    before = victim.read_bytes()
    forged = FORGERIES[forgery](xstore.push(b"x" * 200, origin), tmp_path, origin)
    with pytest.raises(ForgedReferenceError):
        xstore.pull(forged)
    assert victim.read_bytes() == before


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_reference_refused_on_purge(
    xstore: XComStore, tmp_path: Path, origin: Origin, victim: Path, forgery: str
) -> None:
    before = victim.read_bytes()
    forged = FORGERIES[forgery](xstore.push(b"x" * 200, origin), tmp_path, origin)
    with pytest.raises(ForgedReferenceError):
        xstore.purge(forged)
    assert victim.read_bytes() == before


@pytest.mark.parametrize("method", ["read", "verify", "head"])
def test_forged_uri_refused_without_reference(
    xstore: XComStore, tmp_path: Path, origin: Origin, victim: Path, method: str
) -> None:
    with pytest.raises(ForgedReferenceError):
        getattr(xstore, method)(f"file://{tmp_path}/other/{layout.object_path(origin)}")


@pytest.mark.parametrize("target", ["notes.txt", "dag", "dag/run/task/2", ".hidden/run/task/2/my_key.xcs"])
@pytest.mark.parametrize("method", ["pull", "purge", "read", "verify", "head"])
def test_uri_in_store_that_is_no_object_path(
    xstore: XComStore, store_dir: Path, origin: Origin, target: str, method: str
) -> None:
    ref = xstore.push(b"x" * 200, origin)
    (store_dir / "notes.txt").write_text("not an object")
    uri = f"file://{store_dir}/{target}"
    call = getattr(xstore, method)
    with pytest.raises(ForgedReferenceError):
        call({**ref, "uri": uri} if method in ("pull", "purge") else uri)
    assert xstore.pull(ref) == b"x" * 200


# -- damaged objects ---------------------------------------------------------------------------
def flip_payload_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    start = PREFIX_SIZE + parse_prefix(bytes(data[:PREFIX_SIZE]))
    data[(start + len(data) - SEAL_SIZE) // 2] ^= 0x55
    file.write_bytes(bytes(data))


def truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


DAMAGE: dict[str, tuple[Callable[[Path], object], type[XComStoreError], str]] = {
    "flipped-payload-byte": (flip_payload_byte, CorruptObjectError, "checksum"),
    "truncated": (truncate, ObjectFormatError, "truncated"),
    "emptied": (lambda f: f.write_bytes(b""), ObjectFormatError, "too short"),
    "missing": (lambda f: f.unlink(), ObjectNotFoundError, "no object"),
    "not-an-object": (lambda f: f.write_bytes(b"PAR1" + b"\0" * 100), ObjectFormatError, "bad magic"),
}


@pytest.mark.parametrize("compression", ["none", "zstd"])
@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("how", ["pull", "read", "verify"])
def test_damaged_object_gives_clear_error(
    make_xcom_store: MakeStore, origin: Origin, damage: str, compression: str, how: str
) -> None:
    store = make_xcom_store(threshold="0", compression=compression)
    stored = store.push({"numbers": list(range(500))}, origin)
    damage_it, error, message = DAMAGE[damage]
    damage_it(path_of(store, stored))
    call = {"pull": lambda: store.pull(stored), "read": lambda: store.read(stored["uri"])}
    call["verify"] = lambda: store.verify(stored["uri"])
    expected = (
        CorruptObjectError if how == "pull" and damage != "missing" and error is CorruptObjectError else error
    )
    with pytest.raises(expected, match=message) as info:
        call[how]()
    assert str(origin) in str(info.value)  # dag/run/task[2]/my_key
    assert stored["uri"] in str(info.value)


def test_swapped_object(xstore: XComStore, make_origin: Callable[..., Origin]) -> None:
    mine, theirs = make_origin(key="mine"), make_origin(key="theirs")
    my_ref = xstore.push(b"m" * 300, mine)
    their_ref = xstore.push(b"t" * 300, theirs)
    shutil.copyfile(path_of(xstore, their_ref), path_of(xstore, my_ref))
    with pytest.raises(CorruptObjectError, match="replaced or modified") as info:
        xstore.pull(my_ref)
    assert str(mine) in str(info.value)
    assert my_ref["uri"] in str(info.value)
    for read_without_reference in (xstore.read, xstore.verify):
        with pytest.raises(CorruptObjectError, match="header says it holds XCom dag/run/task/theirs") as info:
            read_without_reference(my_ref["uri"])
        assert str(mine) in str(info.value)
        assert my_ref["uri"] in str(info.value)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda ref: {**ref, "checksum": "blake3:" + "0" * 64}, id="other-digest"),
        pytest.param(lambda ref: {**ref, "checksum": "sha256:" + ref["checksum"][7:]}, id="other-algorithm"),
        pytest.param(
            lambda ref: {**{k: v for k, v in ref.items() if k != "checksum"}, "sha256": ref["checksum"][7:]},
            id="legacy-form",
        ),
    ],
)
def test_reference_with_other_checksum(
    xstore: XComStore, origin: Origin, forge: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    stored = xstore.push(b"x" * 300, origin)
    with pytest.raises(CorruptObjectError, match="differs from the reference") as info:
        xstore.pull(forge(stored))
    assert str(origin) in str(info.value)
    assert stored["uri"] in str(info.value)
    assert xstore.pull(stored) == b"x" * 300


def test_sha256_checksum_setting(make_xcom_store: MakeStore, origin: Origin) -> None:
    xstore = make_xcom_store(threshold="0", checksum="sha256")
    stored = xstore.push(b"y" * 300, origin)
    data = path_of(xstore, stored).read_bytes()
    start = PREFIX_SIZE + parse_prefix(data[:PREFIX_SIZE])
    assert stored["checksum"] == "sha256:" + hashlib.sha256(data[start:-SEAL_SIZE]).hexdigest()
    assert xstore.verify(stored["uri"]).checksum == "sha256"
    # The setting decides what new objects get; every store reads both.
    assert make_xcom_store(threshold="0").pull(stored) == b"y" * 300


def _as_version_1(xstore: XComStore, stored: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a sha256 object and its reference as xcomstore wrote them before BLAKE3:
    format version 1 with no "checksum" header field; a bare "sha256" in the reference,
    signed over the fields signed then."""
    path = path_of(xstore, stored)
    data = path.read_bytes()
    length = parse_prefix(data[:PREFIX_SIZE])
    header = json.loads(data[PREFIX_SIZE : PREFIX_SIZE + length])
    assert header.pop("checksum") == "sha256"
    raw = json.dumps(header).encode()
    prefix = MAGIC + (1).to_bytes(2, "big") + len(raw).to_bytes(4, "big")
    seal = data[-SEAL_SIZE:]
    v1_seal = seal[:40] + seal[-8:]  # length and payload digest: no version 3 object digest
    path.write_bytes(prefix + raw + data[PREFIX_SIZE + length : -SEAL_SIZE] + v1_seal)
    legacy = {k: v for k, v in stored.items() if k not in ("checksum", "sig")}
    legacy["sha256"] = stored["checksum"].removeprefix("sha256:")
    fields = ("uri", "replicas", "sha256", "size", "stored_bytes", "codec", "compression", "type", "expires")
    message = json.dumps({f: legacy.get(f) for f in fields}, sort_keys=True, separators=(",", ":"))
    mac = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {**legacy, "sig": f"k1:{mac}"}


def test_objects_and_references_from_before_blake3_stay_readable(
    make_xcom_store: MakeStore, origin: Origin
) -> None:
    writer = make_xcom_store(threshold="0", checksum="sha256", signing_keys=f"k1:{SECRET}")
    legacy = _as_version_1(writer, writer.push({"rows": list(range(100))}, origin))
    reader = make_xcom_store(threshold="0", signing_keys=f"k1:{SECRET}")
    assert reader.pull(legacy) == {"rows": list(range(100))}
    assert reader.verify(legacy["uri"]).checksum == "sha256"
    with pytest.raises(ForgedReferenceError):
        reader.pull({**legacy, "sha256": "0" * 64})
    assert reader.purge(legacy)


# -- reading by uri, verify, head, list ----------------------------------------------------------
def test_read_verify_head_by_uri(xstore: XComStore, origin: Origin) -> None:
    value = np.arange(10.0)
    stored = xstore.push(value, origin)
    assert_same(xstore.read(stored["uri"]), value)
    for header in (xstore.verify(stored["uri"]), xstore.head(stored["uri"])):
        assert header.origin == origin
        assert (header.codec, header.type_name) == ("numpy", "numpy.ndarray")
        assert header.summary == "ndarray float64 10" == stored["summary"]
        # zstd: the codec compresses the array itself (frames on every core), and says so in meta
        assert header.meta == {"dtype": "float64", "shape": [10], "compression": "zstd"}
        assert header.producer["xcomstore"]
        assert header.created.endswith("+00:00")


def test_head_of_missing_object(xstore: XComStore, store_dir: Path, origin: Origin) -> None:
    uri = f"file://{store_dir}/{layout.object_path(origin)}"
    with pytest.raises(ObjectNotFoundError) as info:
        xstore.head(uri)
    assert uri in str(info.value)
    assert str(origin) in str(info.value)


@pytest.fixture
def populated(xstore: XComStore) -> dict[Origin, str]:
    origins = [
        Origin(dag_id="dag_a", run_id="run_1", task_id="t", map_index=-1, key="return_value"),
        Origin(dag_id="dag_a", run_id="run_1", task_id="t", map_index=0, key="return_value"),
        Origin(dag_id="dag_a", run_id="run_2", task_id="t", map_index=-1, key="return_value"),
        Origin(dag_id="dag_b", run_id="run_1", task_id="t", map_index=-1, key="k"),
        Origin(dag_id="dag_a2", run_id="run_1", task_id="t", map_index=-1, key="k"),
    ]
    return {o: xstore.push(np.arange(i + 1), o)["uri"] for i, o in enumerate(origins)}


def test_list_everything(xstore: XComStore, populated: dict[Origin, str]) -> None:
    found = list(xstore.list())
    assert all(isinstance(s, StoredObject) and s.error is None for s in found)
    assert {s.uri: s.header.origin for s in found if s.header} == {u: o for o, u in populated.items()}
    for s in found:
        assert s.size == Path(xstore.location.root, xstore.location.relative(s.uri)).stat().st_size


@pytest.mark.parametrize(
    ("dag_id", "run_id", "expected"),
    [
        ("dag_a", None, {("dag_a", "run_1"), ("dag_a", "run_2")}),
        ("dag_a", "run_1", {("dag_a", "run_1")}),
        ("dag_b", None, {("dag_b", "run_1")}),
        ("dag_c", None, set()),
        ("dag_a", "run_9", set()),
    ],
)
def test_list_per_dag_and_run(
    xstore: XComStore,
    populated: dict[Origin, str],
    dag_id: str,
    run_id: str | None,
    expected: set[tuple[str, str]],
) -> None:
    found = list(xstore.list(dag_id, run_id))
    assert {(s.header.origin.dag_id, s.header.origin.run_id) for s in found if s.header} == expected
    assert len(found) == sum((o.dag_id, o.run_id) in expected for o in populated)


def test_list_reports_unreadable_objects(
    xstore: XComStore, store_dir: Path, populated: dict[Origin, str]
) -> None:
    garbage = store_dir / "dag_a" / "run_1" / "t" / "-1" / "garbage.xcs"
    garbage.write_bytes(b"\x00" * 10)
    bad_header = store_dir / "dag_a" / "run_1" / "t" / "-1" / "bad_header.xcs"
    good = path_of(
        xstore,
        {
            "uri": populated[
                Origin(dag_id="dag_a", run_id="run_1", task_id="t", map_index=-1, key="return_value")
            ]
        },
    )
    bad_header.write_bytes(good.read_bytes()[:PREFIX_SIZE] + b"{" * 20)
    found = {s.uri: s for s in xstore.list("dag_a")}
    for broken in (garbage, bad_header):
        entry = found[f"file://{broken}"]
        assert entry.header is None
        assert entry.error
    assert "too short" in (found[f"file://{garbage}"].error or "")
    assert sum(s.header is not None for s in found.values()) == 3


def test_list_empty_store(xstore: XComStore) -> None:
    assert list(xstore.list()) == []
    assert list(xstore.list("dag")) == []


def test_from_settings_takes_retry_settings(make_xcom_store: MakeStore) -> None:
    store = make_xcom_store(retries="7", retry_timeout="9")
    assert (store.location.retry.retries, store.location.retry.timeout) == (7, 9.0)
    assert store.location.renames_atomically


# -- several locations, retention -------------------------------------------------------------
@pytest.fixture
def two_places(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "primary", tmp_path / "backup"


def replicated(places: tuple[Path, Path], **options: str) -> XComStore:
    raw = {"path": ", ".join(f"file://{p}" for p in places), "threshold": "0", "retries": "0", **options}
    return XComStore.from_settings(Settings.from_mapping(raw))


def test_every_location_gets_a_copy(two_places: tuple[Path, Path], origin: Origin) -> None:
    store = replicated(two_places)
    stored = store.push({"v": 1}, origin)
    ref = Reference.from_json(stored)
    assert ref.uri == f"file://{two_places[0]}/{layout.object_path(origin)}"
    assert ref.replicas == (f"file://{two_places[1]}/{layout.object_path(origin)}",)
    copies = [place / layout.object_path(origin) for place in two_places]
    assert copies[0].read_bytes() == copies[1].read_bytes()
    assert store.pull(stored) == {"v": 1}
    assert store.read(ref.replicas[0]) == {"v": 1}
    assert [len(list(store.list(location=loc))) for loc in store.locations] == [1, 1]
    assert store.purge(stored) is True
    assert not any(c.exists() for c in copies)


@pytest.mark.parametrize("damage", ["missing", "flipped-payload-byte", "truncated"])
def test_read_fails_over_to_the_next_copy(two_places: tuple[Path, Path], origin: Origin, damage: str) -> None:
    store = replicated(two_places)
    stored = store.push({"v": 2}, origin)
    DAMAGE[damage][0](two_places[0] / layout.object_path(origin))
    assert store.pull(stored) == {"v": 2}


def test_no_good_copy_names_every_copy(two_places: tuple[Path, Path], origin: Origin) -> None:
    store = replicated(two_places)
    stored = store.push({"v": 3}, origin)
    for place in two_places:
        (place / layout.object_path(origin)).unlink()
    with pytest.raises(ObjectNotFoundError, match="no copy could be read") as info:
        store.pull(stored)
    assert str(origin) in str(info.value)
    for place in two_places:
        assert f"file://{place}/" in str(info.value)


@pytest.fixture
def blocked_backup(two_places: tuple[Path, Path]) -> tuple[Path, Path]:
    """The backup location cannot be written: its parent is a file."""
    primary, backup = two_places
    backup.write_text("in the way")
    return primary, backup / "store"


def test_required_copies_tolerates_a_failed_location(
    blocked_backup: tuple[Path, Path], origin: Origin
) -> None:
    store = replicated(blocked_backup, required_copies="1")
    stored = store.push({"v": 4}, origin)
    assert Reference.from_json(stored).replicas == ()
    assert store.pull(stored) == {"v": 4}


def test_all_copies_required_by_default(blocked_backup: tuple[Path, Path], origin: Origin) -> None:
    store = replicated(blocked_backup)
    with pytest.raises(StoreUnavailableError, match="cannot open enough copies") as info:
        store.push({"v": 5}, origin)
    assert str(origin) in str(info.value)
    assert files_in(blocked_backup[0]) == []


def test_retention_writes_expiry(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(threshold="0", retention="1d", retention_rules="key=keep_*:never")
    stored = store.push([1], origin)
    header = store.head(stored["uri"])
    assert header.expires is not None
    assert stored["expires"] == header.expires
    created, expires = datetime.fromisoformat(header.created), datetime.fromisoformat(header.expires)
    assert expires - created == timedelta(days=1)
    kept = store.push([1], Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="keep_me"))
    assert "expires" not in kept
    assert store.head(kept["uri"]).expires is None


# -- allowed types and size limit -------------------------------------------------------------
@pytest.mark.parametrize(
    ("allowed", "value", "ok"),
    [
        ("table, array", np.arange(3), True),
        ("table, array", pa.table({"a": [1]}), True),
        ("table, array", b"bytes", False),
        ("table, array", {"a": 1}, False),
        ("json", {"a": 1}, True),
        ("json", np.arange(3), False),
        ("numpy.*", np.arange(3), True),
        ("dict, list", [1, 2], True),
        ("dict, list", "text", False),
        ("pandas.DataFrame", pd.DataFrame({"a": [1]}), True),
        ("pandas.DataFrame", pd.Series([1]), False),
    ],
)
def test_allowed_types(
    make_xcom_store: MakeStore, store_dir: Path, origin: Origin, allowed: str, value: Any, ok: bool
) -> None:
    store = make_xcom_store(threshold="0", allowed_types=allowed)
    if ok:
        assert_same(store.pull(store.push(value, origin)), value)
        return
    with pytest.raises(RejectedValueError, match="allowed_types") as info:
        store.push(value, origin)
    assert "my_key" in str(info.value)
    assert "Nothing was stored" in str(info.value)
    assert files_in(store_dir) == []


def test_allowed_types_do_not_apply_to_inline_keys(make_xcom_store: MakeStore) -> None:
    store = make_xcom_store(allowed_types="table")
    assert store.push(
        {"followed": ["a"]}, Origin(dag_id="d", run_id="r", task_id="t", map_index=-1, key="skipmixin_key")
    ) == {"followed": ["a"]}


@pytest.mark.parametrize(
    ("value", "limit"),
    [(b"x" * 1001, "1000"), (np.zeros(200), "1KB"), ("y" * 2000, "1KiB"), ({"k": list(range(1000))}, "1000")],
    ids=["bytes", "array", "json-str", "json-dict"],
)
def test_max_size_rejects_before_writing(
    make_xcom_store: MakeStore, store_dir: Path, origin: Origin, value: Any, limit: str
) -> None:
    store = make_xcom_store(threshold="0", max_size=limit)
    with pytest.raises(RejectedValueError, match="max_size") as info:
        store.push(value, origin)
    assert "my_key" in str(info.value)
    assert files_in(store_dir) == []


def test_max_size_enforced_while_streaming(
    make_xcom_store: MakeStore, store_dir: Path, origin: Origin
) -> None:
    frame = pd.DataFrame({"text": pd.Series(["z" * 1000] * 100, dtype=object)})  # hint misses the strings
    hint = ArrowCodec().size_hint(frame)
    assert hint < 10_000
    store = make_xcom_store(threshold="0", compression="none", max_size=str(hint + 10_000))
    with pytest.raises(RejectedValueError, match="size limit"):
        store.push(frame, origin)
    assert files_in(store_dir) == []


def test_value_at_max_size_is_stored(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(threshold="0", max_size="1000")
    assert store.pull(store.push(b"x" * 1000, origin)) == b"x" * 1000


# -- signed references --------------------------------------------------------------------------
SECRET = "0123456789abcdef-secret"


@pytest.fixture
def signed(make_xcom_store: MakeStore) -> XComStore:
    return make_xcom_store(threshold="0", signing_keys=f"k1:{SECRET}")


def test_signed_round_trip(signed: XComStore, origin: Origin) -> None:
    stored = signed.push({"v": 1}, origin)
    assert stored["sig"].startswith("k1:")
    assert signed.pull(stored) == {"v": 1}
    assert signed.purge(stored) is True


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda ref: {k: v for k, v in ref.items() if k != "sig"}, id="unsigned"),
        pytest.param(lambda ref: {**ref, "sig": "k9:" + ref["sig"][3:]}, id="unknown-key"),
        pytest.param(lambda ref: {**ref, "sig": "k1:" + "0" * 64}, id="wrong-mac"),
        pytest.param(lambda ref: {**ref, "sig": 42}, id="not-text"),
        pytest.param(lambda ref: {**ref, "uri": ref["uri"].replace("my_key", "other")}, id="uri-changed"),
        pytest.param(lambda ref: {**ref, "checksum": "blake3:" + "0" * 64}, id="checksum-changed"),
        pytest.param(
            lambda ref: {**{k: v for k, v in ref.items() if k != "checksum"}, "sha256": "0" * 64},
            id="checksum-swapped-for-legacy-sha256",
        ),
        pytest.param(lambda ref: {**ref, "size": ref["size"] + 1}, id="size-changed"),
        pytest.param(lambda ref: {**ref, "codec": "bytes"}, id="codec-changed"),
        pytest.param(lambda ref: {**ref, "replicas": ["file:///elsewhere/x.xcs"]}, id="replica-added"),
    ],
)
def test_tampered_signed_reference_refused(
    signed: XComStore, store_dir: Path, origin: Origin, tamper: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    stored = signed.push({"v": 1}, origin)
    signed.push(
        {"v": 2}, Origin(dag_id="dag", run_id="run", task_id="task", map_index=2, key="other")
    )  # a real object the uri could point to
    before = files_in(store_dir)
    forged = tamper(stored)
    with pytest.raises(ForgedReferenceError):
        signed.pull(forged)
    with pytest.raises(ForgedReferenceError):
        signed.purge(forged)
    assert files_in(store_dir) == before


def test_summary_is_not_signed(signed: XComStore, origin: Origin) -> None:
    stored = signed.push({"v": 1}, origin)
    assert signed.pull({**stored, "summary": "edited for display"}) == {"v": 1}


def test_signing_key_rotation(make_xcom_store: MakeStore, origin: Origin) -> None:
    old = make_xcom_store(threshold="0", signing_keys=f"k1:{SECRET}").push([1], origin)
    rotated = make_xcom_store(threshold="0", signing_keys=f"k2:{SECRET}-new, k1:{SECRET}")
    assert rotated.pull(old) == [1]
    assert rotated.push([2], origin)["sig"].startswith("k2:")
    dropped = make_xcom_store(threshold="0", signing_keys=f"k2:{SECRET}-new")
    with pytest.raises(ForgedReferenceError, match="'k1'"):
        dropped.pull(old)


def test_non_ascii_signature_refused(signed: XComStore, origin: Origin) -> None:
    stored = signed.push({"v": 1}, origin)
    with pytest.raises(ForgedReferenceError):
        signed.pull({**stored, "sig": "k1:" + "é" * 64})


# -- encryption ---------------------------------------------------------------------------------
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize("compression", ["none", "zstd"])
@pytest.mark.parametrize("kind", ["bytes", "numpy", "pandas-frame"])
def test_encrypted_round_trip(
    make_xcom_store: MakeStore, origin: Origin, store_dir: Path, compression: str, kind: str
) -> None:
    store = make_xcom_store(threshold="0", compression=compression, encryption_keys=f"k1:{KEY}")
    value = BINARY[kind]()
    stored = store.push(value, origin)
    assert_same(store.pull(stored), value)
    header = store.verify(stored["uri"])
    assert header.encryption is not None
    assert header.encryption["key_id"] == "k1"


def test_encrypted_object_hides_the_value(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(threshold="0", compression="none", encryption_keys=f"k1:{KEY}")
    stored = store.push(b"attack at dawn " * 20, origin)
    assert b"attack at dawn" not in path_of(store, stored).read_bytes()


def test_encrypted_object_without_the_key(make_xcom_store: MakeStore, origin: Origin) -> None:
    stored = make_xcom_store(threshold="0", encryption_keys=f"k1:{KEY}").push({"v": 1}, origin)
    other_key = base64.b64encode(bytes(32)).decode()
    for reader in (
        make_xcom_store(threshold="0"),
        make_xcom_store(threshold="0", encryption_keys=f"k2:{other_key}"),
    ):
        with pytest.raises(MissingKeyError, match="'k1'") as info:
            reader.pull(stored)
        assert str(origin) in str(info.value)
        assert stored["uri"] in str(info.value)
    wrong = make_xcom_store(threshold="0", encryption_keys=f"k1:{other_key}")
    with pytest.raises(CorruptObjectError, match="authentication"):
        wrong.pull(stored)


# -- no leftover hashing threads ----------------------------------------------------------------
def hashing_threads() -> int:
    return sum(t.name == "xcomstore-checksum" and t.is_alive() for t in threading.enumerate())


class FailingUpload:
    """A file-like sink that fails like a dropped connection once `budget` bytes went through."""

    def __init__(self, inner: Any, budget: int) -> None:
        self._inner = inner
        self._budget = budget

    def write(self, data: Any) -> int:
        self._budget -= memoryview(data).nbytes
        if self._budget < 0:
            raise ConnectionResetError("connection reset by peer")
        return int(self._inner.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FailingFS:
    """A local filesystem whose files opened for writing fail after `budget` bytes."""

    def __init__(self, fs: Any, budget: int) -> None:
        self._fs = fs
        self._budget = budget

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        stream = self._fs.open(path, mode, **kwargs)
        return FailingUpload(stream, self._budget) if "w" in mode else stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)


def test_failed_upload_leaves_no_hashing_thread(store_dir: Path, origin: Origin) -> None:
    raw = {"path": f"file://{store_dir}", "threshold": "0", "compression": "none", "retries": "1"}
    settings = Settings.from_mapping(raw)

    def opener(url: str) -> tuple[Any, str]:
        fs, root = fsspec_filesystem(url)
        return FailingFS(fs, budget=1 << 20), root

    store = XComStore.from_settings(settings, opener=opener)
    store.location.retry = RetryPolicy(retries=1, timeout=10.0, first_wait=0.0001)
    before = hashing_threads()
    with pytest.raises(StoreUnavailableError, match="connection reset"):
        store.push(b"x" * (4 << 20), origin)
    assert files_in(store_dir) == []
    assert hashing_threads() == before


def test_partial_payload_read_leaves_no_hashing_thread(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store(threshold="0", compression="none")
    stored = store.push(b"y" * (1 << 20), origin)
    before = hashing_threads()
    with store.open_payload(stored["uri"]) as (header, stream):
        assert header.codec == "bytes"
        assert stream.read(200_000) == b"y" * 200_000  # a preview reads only the start
    assert hashing_threads() == before


# -- references bound to the XCom that holds them --------------------------------------------
def _wanted(origin: Origin, **changes: Any) -> Wanted:
    fields = {"dag_id": origin.dag_id, "task_id": origin.task_id, "key": origin.key, "run_id": origin.run_id}
    return Wanted(**{**fields, **changes})


def test_reference_read_for_its_own_xcom(xstore: XComStore, origin: Origin) -> None:
    stored = xstore.push(b"x" * 100, origin)
    assert xstore.pull(stored, _wanted(origin)) == b"x" * 100
    assert xstore.pull(stored, _wanted(origin, run_id=None, map_index=None)) == b"x" * 100


@pytest.mark.parametrize(
    "change", [{"key": "other"}, {"task_id": "other"}, {"dag_id": "other"}, {"run_id": "r2"}]
)
def test_reference_copied_from_another_xcom_refused(
    xstore: XComStore, store_dir: Path, origin: Origin, change: dict[str, str]
) -> None:
    stored = xstore.push(b"x" * 100, origin)
    wanted = _wanted(origin, **change)
    with pytest.raises(ForgedReferenceError, match="belongs to another XCom") as caught:
        xstore.pull(stored, wanted)
    assert str(wanted) in str(caught.value)
    with pytest.raises(ForgedReferenceError):
        xstore.purge(stored, wanted)
    assert path_of(xstore, stored).exists()  # the other XCom's object is untouched
