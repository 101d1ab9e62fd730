"""Downloads of stored values, streamed: a table or array of any size never sits in memory.

The object is verified first (format, origin, checksum: one streaming pass), then its payload is
streamed out, as stored (Arrow IPC stream, .npy, raw bytes, serde JSON) or, for tables, converted
record batch by record batch to CSV or Parquet.

A checksum proves nothing against whoever can write to the store (they reseal what they wrote),
and a conversion runs inside the Airflow API server: so the IPC stream is read through
arrow_stream's bounds (no message or batch beyond BOUNDS), and each batch is validated in full
before it is converted — bad offsets would make the CSV or Parquet writer read out of bounds.
The first piece of a download is made before `download` returns, so that a damaged object (or
a table CSV cannot hold) is an error the caller can answer with an error page; a batch damaged
further on ends the stream with an ObjectFormatError.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote

from xcomstore.core.store import XComStore
from xcomstore.errors import ObjectFormatError, UnknownFormatError, XComStoreError
from xcomstore.format.header import Header
from xcomstore.identity import Origin
from xcomstore.ops import arrow_stream

CHUNK = 1 << 20
BATCH_ROWS = 65536  # rows converted (and sent) per step
# The codec writes batches of ~4 MiB: 256 MiB leaves room for skewed rows, not for a forgery.
BOUNDS = arrow_stream.Bounds(metadata=16 << 20, body=256 << 20, decompressed=256 << 20)
#: Formats offered per codec; the first is the default.
FORMATS: dict[str, tuple[str, ...]] = {
    "arrow": ("parquet", "csv", "arrows"),
    "numpy": ("npy",),
    "bytes": ("bin",),
    "json": ("json",),
}
MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "arrows": "application/vnd.apache.arrow.stream",
    "npy": "application/octet-stream",
    "bin": "application/octet-stream",
    "json": "application/json",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Download:
    filename: str
    media_type: str
    chunks: Iterator[bytes]

    def content_disposition(self) -> str:
        ascii_name = _UNSAFE.sub("_", self.filename)
        return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(self.filename, safe='')}"


def formats_for(header: Header) -> tuple[str, ...]:
    return FORMATS.get(header.codec, ("bin",))


def download(store: XComStore, uri: str, fmt: str | None) -> Download:
    """Verify the object at `uri`, then a streamed download of it in `fmt` (default per codec)."""
    header = store.verify(uri)
    offered = formats_for(header)
    fmt = fmt or offered[0]
    if fmt not in offered:
        raise UnknownFormatError(f"a {header.type_name} downloads as {', '.join(offered)}, not {fmt!r}")
    convert = _CONVERTERS.get(fmt, _copy)
    chunks = _streamed(store, uri, convert)
    first = next(chunks, b"")  # opens the object, reads the schema and the first batch
    return Download(_filename(header.origin, fmt), MEDIA_TYPES[fmt], _chain(first, chunks))


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _streamed(store: XComStore, uri: str, convert: Callable[[BinaryIO], Iterator[bytes]]) -> Iterator[bytes]:
    # A generator: the object is opened when the response starts and closed when it ends.
    with store.open_payload(uri) as (_, stream):
        try:
            yield from convert(stream)
        except XComStoreError:
            raise
        except Exception as exc:  # a damaged payload fails in pyarrow or a decompressor
            raise ObjectFormatError(f"cannot be converted: {type(exc).__name__}: {exc}") from exc


def _copy(stream: BinaryIO) -> Iterator[bytes]:
    while piece := stream.read(CHUNK):
        yield bytes(piece)


def _csv(stream: BinaryIO) -> Iterator[bytes]:
    import pyarrow.csv as pacsv

    return _table_batches(stream, lambda sink, schema: pacsv.CSVWriter(sink, _flat(schema)))


def _flat(schema: Any) -> Any:
    """`schema`, if CSV can hold every column: nested ones (lists, structs, maps) it cannot."""
    import pyarrow as pa

    nested = [f"{f.name} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise UnknownFormatError(
            f"a table with nested columns ({', '.join(nested)[:300]}) downloads as parquet or arrows, not csv"
        )
    return schema


def _parquet(stream: BinaryIO) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    # Parquet is written front to back (the footer last), so it streams as well: one row group
    # per record batch.
    return _table_batches(stream, lambda sink, schema: pq.ParquetWriter(sink, schema))


def _table_batches(stream: BinaryIO, open_writer: Callable[[Any, Any], Any]) -> Iterator[bytes]:
    """Convert an Arrow IPC stream batch by batch, handing out what each batch produced; each
    batch is read within BOUNDS and validated in full before it is converted."""
    import pyarrow as pa

    reader = arrow_stream.open_stream(stream, BOUNDS)
    pipe = _Pipe()
    with open_writer(pa.PythonFile(pipe, mode="w"), reader.schema) as writer:
        for batch in arrow_stream.batches(reader):
            for start in range(0, batch.num_rows, BATCH_ROWS):
                writer.write_batch(batch.slice(start, BATCH_ROWS))
                yield pipe.take()
    yield pipe.take()


class _Pipe(io.RawIOBase):
    """A write-only file that keeps what was written until it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._parts.append(piece)
        self._position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _filename(origin: Origin, fmt: str) -> str:
    index = f"_{origin.map_index}" if origin.map_index >= 0 else ""
    return f"{origin.dag_id}.{origin.task_id}{index}.{origin.key or 'value'}.{fmt}"


_CONVERTERS: dict[str, Callable[[BinaryIO], Iterator[bytes]]] = {"csv": _csv, "parquet": _parquet}
