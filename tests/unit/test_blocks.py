"""Tables laid out as blocks (format version 4): what a damaged, reshuffled or relabelled object
does to whole and partial reads, objects written before (read whole), and typed reads that
never import the library they do not need."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from tests.contracts.projection_contract import KEYS, block_of
from tests.faults import hostile

from xcomstore.codecs import ArrowCodec
from xcomstore.core import layout
from xcomstore.core.store import XComStore
from xcomstore.errors import CorruptObjectError, ObjectFormatError, ProjectionError
from xcomstore.format import blocks, container
from xcomstore.format.container import PREFIX_SIZE, SEAL_MAGIC, SEAL_SIZE, object_digest
from xcomstore.format.encryption import Keyring
from xcomstore.identity import Origin

MakeStore = Callable[..., XComStore]


def frame(rows: int = 2000) -> pd.DataFrame:
    return pd.DataFrame(
        {"a": np.arange(rows), "b": np.linspace(0, 1, rows), "c": [f"s{i}" for i in range(rows)]}
    )


def path_of(store_dir: Path, origin: Origin) -> Path:
    return store_dir / layout.object_path(origin)


def resealed(head: bytes, payload: bytes, digest: bytes) -> bytes:
    """An object of `head` and `payload`, with a seal made for them: what anyone who can write
    to the store can make, the reference aside."""
    seal = struct.pack(
        ">Q32s32s8s", len(payload), digest, object_digest(head, len(payload), digest), SEAL_MAGIC
    )
    return head + payload + seal


def split_object(data: bytes) -> tuple[bytes, bytes]:
    start = container.payload_offset(container.parse_prefix(data))
    return data[:start], data[start:-SEAL_SIZE]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_swapped_blocks_are_refused(
    make_xcom_store: MakeStore, store_dir: Path, origin: Origin, encrypted: bool
) -> None:
    """Two blocks of the same size change places (the index is untouched): each is checked
    against its own entry, and encrypted ones are bound to their place by their nonce."""
    store = make_xcom_store(compression="none", **({"encryption_keys": KEYS} if encrypted else {}))
    stored = store.push(pd.DataFrame({"x": np.zeros(3000), "y": np.ones(3000)}), origin)
    path = path_of(store_dir, origin)
    data = path.read_bytes()
    keyring = Keyring.parse(KEYS) if encrypted else None
    (x0, x1), (y0, y1) = block_of(data, "x", keyring), block_of(data, "y", keyring)
    assert x1 - x0 == y1 - y0
    path.write_bytes(data[:x0] + data[y0:y1] + data[x1:y0] + data[x0:x1] + data[y1:])
    for read in (lambda: store.pull(stored), lambda: store.pull(stored, columns=["y"])):
        with pytest.raises(CorruptObjectError, match=r"block [01]"):
            read()


def test_a_changed_index_is_refused(make_xcom_store: MakeStore, store_dir: Path, origin: Origin) -> None:
    """The index's digest is the payload digest: change a row count in it and the seal (or,
    resealed, the reference) refuses the object, on partial reads as on whole ones."""
    store = make_xcom_store()
    stored = store.push(frame(), origin)
    path = path_of(store_dir, origin)
    head, payload = split_object(path.read_bytes())
    first, end = blocks.index_span(payload[-blocks.TRAILER_SIZE :], len(payload))
    index = json.loads(payload[first:end])
    index["groups"][0] -= 1
    changed = json.dumps(index, separators=(",", ":")).encode()
    trailer = struct.pack(">Q8s", len(changed), blocks.INDEX_MAGIC)
    forged = payload[:first] + changed + trailer
    path.write_bytes(head + forged + path.read_bytes()[-SEAL_SIZE:])  # the old seal
    with pytest.raises(ObjectFormatError):
        store.pull(stored, columns=["a"])
    path.write_bytes(resealed(head, forged, blocks.index_digest("blake3", changed)))
    for read in (lambda: store.pull(stored), lambda: store.pull(stored, columns=["a"])):
        with pytest.raises(CorruptObjectError, match="checksum differs from the reference"):
            read()


@pytest.mark.parametrize(
    "damage",
    [
        lambda payload: payload[:-8] + b"NOTMAGIC",  # the trailer's magic
        lambda payload: payload[:-16] + struct.pack(">Q", 1 << 40) + payload[-8:],  # an index past the start
        lambda payload: payload[:-16] + struct.pack(">Q", 3) + payload[-8:],  # a cut index
    ],
    ids=["magic", "overlong-index", "short-index"],
)
def test_a_damaged_trailer_is_refused(
    make_xcom_store: MakeStore, store_dir: Path, origin: Origin, damage: Callable[[bytes], bytes]
) -> None:
    store = make_xcom_store()
    stored = store.push(frame(), origin)
    path = path_of(store_dir, origin)
    data = path.read_bytes()
    head, payload = split_object(data)
    _, seal, _ = container.sealed_ends(head, data)
    path.write_bytes(resealed(head, damage(payload), seal.digest))
    for read in (lambda: store.read(stored["uri"]), lambda: store.read(stored["uri"], columns=["b"])):
        with pytest.raises(ObjectFormatError):
            read()


def test_layout_and_version_must_agree(make_xcom_store: MakeStore, store_dir: Path, origin: Origin) -> None:
    """A blocked object relabelled as a stream (version 3), or a stream as blocks, is refused:
    each layout's payload digest means something else."""
    store = make_xcom_store()
    store.push(frame(), origin)
    path = path_of(store_dir, origin)
    data = path.read_bytes()
    head, payload = split_object(data)
    _, seal, _ = container.sealed_ends(head, data)
    relabelled = head[:8] + struct.pack(">H", container.STREAM_VERSION) + head[10:]
    path.write_bytes(resealed(relabelled, payload, seal.digest))
    with pytest.raises(ObjectFormatError, match="laid out as 'blocks'"):
        store.read(store.location.uri(layout.object_path(origin)))
    header = json.loads(head[PREFIX_SIZE:])
    del header["layout"]
    raw = json.dumps(header).encode()
    path.write_bytes(resealed(head[:10] + struct.pack(">I", len(raw)) + raw, payload, seal.digest))
    with pytest.raises(ObjectFormatError, match="laid out as 'stream'"):
        store.read(store.location.uri(layout.object_path(origin)))


def test_a_read_charges_the_blocks_before_fetching_them(make_xcom_store: MakeStore, origin: Origin) -> None:
    """trust boundary: a reference whose size is far below what the index claims is refused."""
    store = make_xcom_store()
    stored = store.push(frame(100_000), origin)
    shrunk = {**stored, "size": 1000}
    with pytest.raises(ObjectFormatError, match="decodes to more than its limit"):
        store.pull(shrunk, columns=["c"])


def test_tables_written_before_blocks_read_whole(make_xcom_store: MakeStore, origin: Origin) -> None:
    """A version 3 table (one Arrow stream) is read whole, then projected and converted."""
    store = make_xcom_store(compression="zstd")
    value = frame()
    uri = hostile.write_stream_table(
        store, origin, value, lambda out: ArrowCodec().encode(value, out, "zstd")
    )
    relpath = store.location.relative(uri)
    assert container.prefix_version(store.location.read_range(relpath, 0, PREFIX_SIZE)) == 3
    pd.testing.assert_frame_equal(store.read(uri), value)
    pd.testing.assert_frame_equal(store.read(uri, columns=["c", "a"]), value[["c", "a"]])
    polars = store.read(uri, columns=["b"], to="polars")
    assert isinstance(polars, pl.DataFrame)
    assert polars["b"].to_list() == value["b"].tolist()
    with pytest.raises(ProjectionError, match="no column 'z'"):
        store.read(uri, columns=["z"])


def test_a_frame_from_pandas_reads_as_polars_without_pandas(
    make_xcom_store: MakeStore, store_dir: Path, origin: Origin
) -> None:
    """And back: neither library is imported for the other."""
    store = make_xcom_store()
    pandas_uri = store.location.uri(layout.object_path(origin))
    store.push(frame(), origin)
    polars_origin = dataclasses.replace(origin, key="from_polars")
    store.push(pl.from_pandas(frame()), polars_origin)
    polars_uri = store.location.uri(layout.object_path(polars_origin))
    script = f"""
import sys
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
store = XComStore.from_settings(Settings.from_mapping({{"path": "file://{store_dir}"}}))
value = store.read({pandas_uri!r}, columns=["c", "a"], to="polars")
assert type(value).__module__.startswith("polars"), type(value)
assert value.columns == ["c", "a"] and value.height == 2000
assert "pandas" not in sys.modules, "pandas was imported"
table = store.read({polars_uri!r}, to="arrow")
assert table.num_rows == 2000 and "pandas" not in sys.modules
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    script = f"""
import sys
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
store = XComStore.from_settings(Settings.from_mapping({{"path": "file://{store_dir}"}}))
value = store.read({polars_uri!r}, to="pandas")
assert type(value).__module__.startswith("pandas") and list(value.columns) == ["a", "b", "c"]
assert "polars" not in sys.modules, "polars was imported"
"""
    subprocess.run([sys.executable, "-c", script], check=True)


def test_pandas_index_comes_with_selected_columns(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store()
    value = frame().set_index("c")
    stored = store.push(value, origin)
    pd.testing.assert_frame_equal(store.pull(stored, columns=["b"]), value[["b"]])
    assert store.pull(stored, columns=["b"], to="arrow").column_names == ["b"]  # no index: no pandas
    with pytest.raises(ProjectionError, match=r"its columns are 'a', 'b'$"):
        store.pull(stored, columns=["nope"])


def test_empty_and_wide_tables(make_xcom_store: MakeStore, origin: Origin) -> None:
    store = make_xcom_store()
    empty = pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())})
    stored = store.push(empty, origin)
    assert store.pull(stored).equals(empty)
    assert store.pull(stored, columns=["b"]).equals(empty.select(["b"]))
    wide = pa.table({f"c{i}": [i] * 3 for i in range(300)})
    stored = store.push(wide, origin)
    assert store.pull(stored).equals(wide)
    assert store.pull(stored, columns=["c299", "c0"]).equals(wide.select(["c299", "c0"]))


def test_rekey_and_repair_keep_blocked_tables_verified(
    make_xcom_store: MakeStore, store_dir: Path, make_origin: Callable[..., Origin]
) -> None:
    """rekey re-encrypts block by block (the plain blocks and index, so every reference, stay
    the same); repair verifies a blocked copy block by block."""
    from xcomstore.ops.rekey import rekey

    old_key, new_key = KEYS, "k2:" + base64.b64encode(bytes(range(100, 132))).decode()
    encrypted = make_xcom_store(encryption_keys=old_key).push(frame(), make_origin(key="old"))
    plain = make_xcom_store().push(frame(), make_origin(key="plain"))
    rotated = make_xcom_store(encryption_keys=f"{new_key}, {old_key}")
    summary = rekey(rotated)
    assert summary.errors == []
    assert len(summary.rewritten) == 2
    only_new = make_xcom_store(encryption_keys=new_key)
    for stored in (encrypted, plain):
        pd.testing.assert_frame_equal(only_new.pull(stored), frame())
        pd.testing.assert_frame_equal(only_new.pull(stored, columns=["c"]), frame()[["c"]])
        assert only_new.verify(stored["uri"]).encryption["key_id"] == "k2"  # type: ignore[index]
    path = store_dir / layout.object_path(make_origin(key="plain"))
    data = path.read_bytes()
    start, _ = block_of(data, "a", Keyring.parse(new_key))
    path.write_bytes(data[:start] + bytes([data[start] ^ 1]) + data[start + 1 :])
    with pytest.raises(CorruptObjectError, match="block 0"):
        only_new.verify(plain["uri"])
    assert "block 0" in rekey(make_xcom_store(encryption_keys=f"k3:{KEYS[3:]}, {new_key}")).errors[0]


def test_uncompressed_blocks_are_the_columns_own_buffers() -> None:
    # An uncompressed, unencrypted push writes a column's values from the table's memory: the
    # block's pieces are views of its buffers, not copies (a copy per block made an 80 MB
    # frame's push 2-3x slower than the stream layout before it).
    values = pa.array(np.linspace(0, 1, 300_000))
    table = pa.table({"x": values, "y": values})
    made = ArrowCodec().blocks(table)
    data = values.buffers()[1]
    pieces = [p for block in made.blocks for p in block]
    addresses = {
        np.frombuffer(p, dtype="u1").ctypes.data for p in pieces if memoryview(p).nbytes >= data.size
    }
    assert data.address in addresses
