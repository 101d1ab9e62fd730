"""ProjectionContract: typed and column-projected reads (`columns=`, `to=`) on every kind of store.

Tables are stored as blocks (format/blocks.py): a read of some columns fetches only their
blocks, by ranged reads, and verifies each against the index the seal vouches for. Not
collected itself: tests/unit/test_xcomstore_file.py and tests/lifecycle/test_xcomstore_s3.py
subclass it (they provide `urls` and, for S3, `opener`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from tests.lifecycle.stores import RawObjects, make_store

from xcomstore.core.store import FilesystemOpener, XComStore
from xcomstore.errors import CorruptObjectError, ProjectionError
from xcomstore.format import blocks, container
from xcomstore.format.encryption import Keyring
from xcomstore.identity import Origin
from xcomstore.storage.location import fsspec_filesystem

KEYS = "k1:" + base64.b64encode(bytes(range(32))).decode()
ORIGIN = Origin(dag_id="projection", run_id="run", task_id="task", map_index=-1, key="return_value")


def table(rows: int = 3000) -> pa.Table:
    return pa.table(
        {
            "i": pa.array(range(rows), pa.int64()),
            "f": pa.array(np.linspace(0, 1, rows)),
            "s": pa.array([f"v{i}" if i % 7 else None for i in range(rows)]),
            "b": pa.array([i % 3 == 0 for i in range(rows)]),
        }
    )


MAKERS: dict[str, Callable[[], Any]] = {
    "arrow": table,
    "pandas": lambda: table().to_pandas(),
    "polars": lambda: pl.from_arrow(table()),
}


def as_arrow(value: Any) -> pa.Table:
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pd.DataFrame):
        return pa.Table.from_pandas(value, preserve_index=False)
    return value.to_arrow()


def same_table(back: Any, expected: pa.Table, kind: type) -> None:
    assert type(back) is kind
    got = as_arrow(back)
    assert got.column_names == expected.column_names
    for name in expected.column_names:
        assert got.column(name).to_pylist() == expected.column(name).to_pylist(), name


class CountingFilesystem:
    """A real fsspec filesystem, counting the bytes its ranged reads return (and refusing to
    open whole-object streams, which a projection must not need)."""

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self.read = 0
        self.streams = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kw: Any) -> bytes:
        data = bytes(self._fs.cat_file(path, start=start, end=end, **kw))
        self.read += len(data)
        return data

    def open(self, *args: Any, **kw: Any) -> Any:
        if "r" in str(args[1] if len(args) > 1 else kw.get("mode", "rb")):
            self.streams += 1
        return self._fs.open(*args, **kw)


def block_of(data: bytes, column: str, keyring: Keyring | None = None) -> tuple[int, int]:
    """Where in the object `data` the first block of `column` lies."""
    header_length = container.parse_prefix(data)
    start = container.payload_offset(header_length)
    header, seal, _ = container.sealed_ends(data[:start], data[-container.SEAL_SIZE :])
    payload = data[start : len(data) - container.SEAL_SIZE]
    first, end = blocks.index_span(payload[-blocks.TRAILER_SIZE :], len(payload))
    index = blocks.open_index(payload[first:end], header, keyring, seal.digest)
    block = index.of_column(index.columns.index(column))[0]
    return start + block.start, start + block.end


class ProjectionContract:
    @pytest.fixture
    def urls(self) -> tuple[str, str]:
        raise NotImplementedError("a ProjectionContract subclass provides two empty locations")

    @pytest.fixture
    def opener(self) -> FilesystemOpener:
        return fsspec_filesystem

    @pytest.fixture
    def make(self, urls: tuple[str, str], opener: FilesystemOpener) -> Callable[..., XComStore]:
        return lambda **options: make_store([urls[0]], opener, **options)

    @pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
    @pytest.mark.parametrize("compression", ["none", "zstd", "lz4"])
    @pytest.mark.parametrize("kind", sorted(MAKERS))
    def test_typed_and_projected_reads(
        self, make: Callable[..., XComStore], kind: str, compression: str, encrypted: bool
    ) -> None:
        store = make(compression=compression, **({"encryption_keys": KEYS} if encrypted else {}))
        value = MAKERS[kind]()
        stored = store.push(value, ORIGIN)
        expected = table()
        same_table(store.pull(stored), expected, type(value))
        same_table(store.pull(stored, columns=["s", "i"]), expected.select(["s", "i"]), type(value))
        for to, library in (("arrow", pa.Table), ("pandas", pd.DataFrame), ("polars", pl.DataFrame)):
            same_table(store.pull(stored, to=to), expected, library)
            same_table(store.read(stored["uri"], columns=["f"], to=to), expected.select(["f"]), library)

    def test_projection_reads_only_those_columns(
        self, urls: tuple[str, str], opener: FilesystemOpener
    ) -> None:
        """2 of 20 float64 columns, in several row groups: those blocks' bytes, and no stream."""
        counting: list[CountingFilesystem] = []

        def counted(url: str) -> tuple[Any, str]:
            fs, root = opener(url)
            counting.append(CountingFilesystem(fs))
            return counting[-1], root

        rows = 200_000  # a wide column makes row groups of ~40,000 rows: several blocks a column
        columns = {f"c{i}": np.random.default_rng(i).random(rows) for i in range(20)}
        value = pa.table({**columns, "wide": pa.array([b"w" * 100] * rows, pa.binary())})
        stored = make_store([urls[0]], opener, compression="none").push(value, ORIGIN)
        reader = make_store([urls[0]], counted, compression="none")
        back = reader.pull(stored, columns=["c3", "c17"])
        assert back.equals(value.select(["c3", "c17"]))
        wanted = 2 * rows * 8
        assert counting[0].streams == 0
        assert wanted <= counting[0].read <= 1.3 * wanted, counting[0].read

    def test_missing_columns_are_named(self, make: Callable[..., XComStore]) -> None:
        store = make()
        stored = store.push(MAKERS["pandas"](), ORIGIN)
        with pytest.raises(ProjectionError, match=r"no column 'x', 'y'; its columns are 'i', 'f', 's', 'b'"):
            store.pull(stored, columns=["i", "x", "y"])

    def test_what_is_not_a_table_is_never_projected(self, make: Callable[..., XComStore]) -> None:
        store = make(threshold="0")
        as_json = store.push({"a": [1, 2, 3]}, ORIGIN)
        with pytest.raises(ProjectionError, match="no columns"):
            store.pull(as_json, columns=["a"])
        with pytest.raises(ProjectionError, match="cannot be read as 'pandas'"):
            store.pull(as_json, to="pandas")
        with pytest.raises(ProjectionError, match="no columns"):
            store.pull({"a": 1}, columns=["a"])  # an inline value
        array = store.push(np.arange(10.0), ORIGIN)
        assert store.pull(array, to="numpy").tolist() == list(np.arange(10.0))
        with pytest.raises(ProjectionError, match="cannot be read as 'polars'"):
            store.pull(array, to="polars")
        frame = store.push(MAKERS["polars"](), ORIGIN)
        with pytest.raises(ProjectionError, match="not as 'numpy'"):
            store.pull(frame, to="numpy")
        with pytest.raises(ProjectionError, match="to='excel'"):
            store.pull(frame, to="excel")
        with pytest.raises(ProjectionError, match="list of column names"):
            store.pull(frame, columns="i")

    @pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
    def test_a_tampered_block_is_refused(
        self, make: Callable[..., XComStore], raw: RawObjects, encrypted: bool
    ) -> None:
        store = make(**({"encryption_keys": KEYS} if encrypted else {}))
        stored = store.push(table(), ORIGIN)
        data = raw.read(stored["uri"])
        start, end = block_of(data, "s", Keyring.parse(KEYS) if encrypted else None)
        middle = (start + end) // 2
        raw.write(stored["uri"], data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
        with pytest.raises(CorruptObjectError, match="block 2"):
            store.pull(stored, columns=["s"])
        with pytest.raises(CorruptObjectError, match="block 2"):
            store.pull(stored)
        with pytest.raises(CorruptObjectError, match="block 2"):
            store.verify(stored["uri"])
        # The blocks of other columns are untouched and verified on their own.
        same_table(store.pull(stored, columns=["i", "b"]), table().select(["i", "b"]), pa.Table)
