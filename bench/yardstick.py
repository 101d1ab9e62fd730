"""The yardstick: the same values written and read directly, with no Airflow and no XCom.

Frames: an Arrow IPC file (pandas/polars converted to and from Arrow, zstd buffer compression
when asked). Arrays: the raw bytes. JSON and ints: json.dumps bytes. On the local file store the
fsync after the write is timed apart (push.extra.fsync_seconds), since no backend fsyncs; on S3
the bytes go through plain s3fs pipe (put) and cat (get), with the client set up before timing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench import values
from bench.cases import Case
from bench.measure import Measurement, measured
from bench.taskside import save

# pyarrow has no type stubs: its Buffer is Any to mypy, so the alias names the other two.
Buffer = bytes | memoryview


def run(case: Case, store_url: str, directory: Path) -> None:
    """Push then pull the case's value; records go to push.json and pull.json like the DAG's."""
    value = values.make(case.value)
    pushed = values.fingerprint(value)
    target = _Target(store_url, case)
    m = Measurement()
    try:
        with measured() as m:
            target.write(value)
        m.extra["fsync_seconds"] = target.sync()
    finally:
        save("push", {"fingerprint": pushed, **m.to_dict()}, directory)
    del value
    pull, pulled = Measurement(), None
    try:
        with measured() as pull:
            pulled = target.read()
    finally:
        save("pull", pull.to_dict(), directory)
    got = values.fingerprint(pulled)
    pull.extra = {"fingerprint": got, "intact": got == pushed}
    save("pull", pull.to_dict(), directory)


class _Target:
    """Where the yardstick's object lives: a local file or an S3 key."""

    def __init__(self, store_url: str, case: Case) -> None:
        self.case = case
        self.kind = case.value.kind
        self.zstd = case.compression == "zstd"
        name = f"value.{'arrow' if _is_frame(self.kind) else 'bin'}"
        if store_url.startswith("s3://"):
            import s3fs

            self.fs: Any = s3fs.S3FileSystem(endpoint_url=os.environ["BENCH_S3_ENDPOINT"])
            self.path = f"{store_url.removeprefix('s3://').split('@')[-1]}/{name}"
            self.fs.exists(self.path)  # the client and its connection: set up before timing
        else:
            self.fs = None
            folder = Path(store_url.removeprefix("file://"))
            folder.mkdir(parents=True, exist_ok=True)
            self.path = str(folder / name)

    def write(self, value: Any) -> None:
        if self.fs is not None:
            self.fs.pipe(self.path, _as_bytes(self._encode(value)))
        elif _is_frame(self.kind):
            with pa.OSFile(self.path, "wb") as sink:
                _write_ipc(_to_arrow(value, self.kind), sink, self.zstd)
        else:
            with open(self.path, "wb") as sink:
                sink.write(self._encode(value))

    def sync(self) -> float | None:
        """fsync the local file, timed apart: the backends don't fsync either."""
        if self.fs is not None:
            return None
        started = time.perf_counter()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return time.perf_counter() - started

    def read(self) -> Any:
        if self.fs is not None:
            return self._decode(self.fs.cat(self.path))
        if _is_frame(self.kind):
            with pa.OSFile(self.path, "rb") as source:
                return _from_arrow(pa.ipc.open_file(source).read_all(), self.kind)
        if self.kind == "numpy" and not self.zstd:
            return _read_array_into(self.path, self.case.value.rows)
        return self._decode(Path(self.path).read_bytes())

    def _encode(self, value: Any) -> Buffer:
        if _is_frame(self.kind):
            sink = pa.BufferOutputStream()
            _write_ipc(_to_arrow(value, self.kind), sink, self.zstd)
            return memoryview(sink.getvalue())
        if self.kind == "numpy":
            data: Buffer = np.ascontiguousarray(value).data.cast("B")
        else:
            data = json.dumps(value).encode()
        return bytes(_zstd().compress(data)) if self.zstd else data

    def _decode(self, data: bytes) -> Any:
        if _is_frame(self.kind):
            return _from_arrow(pa.ipc.open_file(pa.BufferReader(data)).read_all(), self.kind)
        if self.zstd:
            data = _unzstd().decompress(data)
        if self.kind == "numpy":
            return np.frombuffer(data, dtype=np.float64).reshape(self.case.value.rows, -1)
        return json.loads(data)


def _is_frame(kind: str) -> bool:
    return kind in ("pandas", "polars")


def _to_arrow(value: Any, kind: str) -> pa.Table:
    return pa.Table.from_pandas(value) if kind == "pandas" else value.to_arrow()


def _from_arrow(table: pa.Table, kind: str) -> Any:
    if kind == "pandas":
        return table.to_pandas()
    import polars as pl

    return pl.from_arrow(table)


def _write_ipc(table: pa.Table, sink: Any, zstd: bool) -> None:
    options = pa.ipc.IpcWriteOptions(compression="zstd" if zstd else None)
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)


def _read_array_into(path: str, rows: int) -> np.ndarray:
    array = np.empty((rows, 10), dtype=np.float64)
    with open(path, "rb") as source:
        source.readinto(array.data.cast("B"))
    return array


def _as_bytes(data: Buffer) -> bytes:
    # botocore accepts only bytes (or a file) as a body: one copy of the payload.
    return data if isinstance(data, bytes) else bytes(data)


def _zstd() -> Any:
    import zstandard

    return zstandard.ZstdCompressor(level=3)


def _unzstd() -> Any:
    import zstandard

    return zstandard.ZstdDecompressor()
