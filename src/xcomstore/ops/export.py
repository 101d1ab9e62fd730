"""Downloads and files of stored values, streamed: a table or array of any size never sits in
memory. The UI's downloads (`download`) and `xcomstore get` (`write_file`) share the conversions.

The object is verified first (format, origin, checksum: one streaming pass), then its payload is
streamed out, as stored (Arrow IPC stream, .npy, raw bytes, serde JSON) or converted: a table
record batch by record batch to Parquet, an Arrow IPC file, CSV, JSON records or JSON lines; an
array a block of rows at a time to CSV or JSON (nested lists).

A checksum proves nothing against whoever can write to the store (they reseal what they wrote),
and a conversion runs inside the Airflow API server: so the IPC stream is read through
arrow_stream's bounds (no message or batch beyond BOUNDS), and each batch is validated in full
before it is converted — bad offsets would make the CSV or Parquet writer read out of bounds.
The first piece of a download is made before `download` returns, so that a damaged object (or
a table CSV cannot hold) is an error the caller can answer with an error page; a batch damaged
further on ends the stream with an ObjectFormatError.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from xcomstore.codecs.numpy_zstd import NpyView
from xcomstore.core.store import XComStore
from xcomstore.errors import ObjectFormatError, UnknownFormatError, XComStoreError
from xcomstore.format.header import Header
from xcomstore.identity import Origin
from xcomstore.ops import arrow_stream

CHUNK = 1 << 20
BATCH_ROWS = 65536  # rows converted (and sent) per step
ROW_GROUP_BYTES = 32 << 20  # of a Parquet row group (held until written), before encoding
GROUP_ROWS = 1 << 20  # rows of a group at most (Parquet's own default row group size)
# The codec writes batches of ~4 MiB: 256 MiB leaves room for skewed rows, not for a forgery.
BOUNDS = arrow_stream.Bounds(metadata=16 << 20, body=256 << 20, decompressed=256 << 20)
#: Formats the UI offers per codec; the first is the default.
FORMATS: dict[str, tuple[str, ...]] = {
    "arrow": ("parquet", "csv", "arrows"),
    "numpy": ("npy",),
    "bytes": ("bin",),
    "json": ("json",),
}
#: Formats a file can be written in per codec (`xcomstore get`); the first is the default.
FILE_FORMATS: dict[str, tuple[str, ...]] = {
    "arrow": ("parquet", "arrow", "arrows", "csv", "json", "jsonl"),
    "numpy": ("npy", "csv", "json"),
    "bytes": ("bin",),
    "json": ("json",),
}
#: The format a file's extension asks for; .feather is an Arrow IPC file (Feather v2).
EXTENSIONS = {
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".arrows": "arrows",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".npy": "npy",
    ".bin": "bin",
}
MEDIA_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.file",
    "csv": "text/csv; charset=utf-8",
    "arrows": "application/vnd.apache.arrow.stream",
    "jsonl": "application/jsonl",
    "npy": "application/octet-stream",
    "bin": "application/octet-stream",
    "json": "application/json",
}
ARRAY_CSV_DIMENSIONS = (1, 2)  # CSV holds a column or a grid
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
    chunks = _streamed(store, uri, _converter(header.codec, fmt))
    first = next(chunks, b"")  # opens the object, reads the schema and the first batch
    return Download(_filename(header.origin, fmt), MEDIA_TYPES[fmt], _chain(first, chunks))


# -- files ---------------------------------------------------------------------------------------
def file_formats(header: Header) -> tuple[str, ...]:
    return FILE_FORMATS.get(header.codec, ("bin",))


def file_format(header: Header, output: Path, fmt: str | None = None) -> str:
    """The format to write the value of `header` to `output` in: `fmt` if given, else what the
    extension asks for. UnknownFormatError, naming the formats that fit, if the value has not it."""
    offered = file_formats(header)
    if offered == ("bin",):
        if fmt not in (None, "bin"):
            raise UnknownFormatError(f"a {header.type_name} is written as its raw bytes (bin), not {fmt}")
        return "bin"  # bytes are bytes, whatever the file is called
    chosen = fmt or EXTENSIONS.get(output.suffix.lower())
    if chosen in offered:
        return chosen
    fits = ", ".join(_extensions(f) for f in offered)
    asked = f"--format {fmt}" if fmt else output.suffix or "a name without an extension"
    raise UnknownFormatError(
        f"a {header.type_name} is written as {fits} (by the extension of -o, or --format), not {asked}"
    )


def _extensions(fmt: str) -> str:
    return "/".join(ext for ext, name in EXTENSIONS.items() if name == fmt)


def write_file(store: XComStore, uri: str, header: Header, fmt: str, output: Path) -> int:
    """Write the value at `uri` (verified by the caller: `header`) to `output` in `fmt`, streamed;
    the bytes written. The file is written under a hidden temporary name beside `output` and
    renamed once complete: a failure leaves no partial file, nor touches one already there."""
    convert = _converter(header.codec, fmt)
    # Hidden, and short enough for any file system whatever `output` is called (255 bytes).
    partial = output.parent / f".{output.name[:200]}.{uuid.uuid4().hex[:12]}.part"
    written = 0
    try:
        with partial.open("xb") as out:
            for chunk in _streamed(store, uri, convert):
                out.write(chunk)
                written += len(chunk)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _streamed(store: XComStore, uri: str, convert: Callable[[BinaryIO], Iterator[bytes]]) -> Iterator[bytes]:
    # A generator: the object is opened when the response starts and closed when it ends.
    with store.open_payload(uri) as (header, stream):
        try:
            if header.codec == "numpy":  # zstd frames: the .npy they hold (its first read decompresses)
                stream = NpyView(stream)  # type: ignore[assignment]
            yield from convert(stream)
        except XComStoreError:
            raise
        except Exception as exc:  # a damaged payload fails in pyarrow or a decompressor
            raise ObjectFormatError(f"cannot be converted: {type(exc).__name__}: {exc}") from exc


def _converter(codec: str, fmt: str) -> Callable[[BinaryIO], Iterator[bytes]]:
    """How a payload of `codec` becomes `fmt`; anything else is the payload as stored."""
    return _CONVERTERS.get((codec, fmt), _copy)


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
            f"a table with nested columns ({', '.join(nested)[:300]}) downloads as parquet, arrow, "
            "arrows, json or jsonl, not csv"
        )
    return schema


def _parquet(stream: BinaryIO) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    # Parquet is written front to back (the footer last), so it streams as well, a row group at
    # a time: of ROW_GROUP_BYTES, since row groups of one record batch each encode worse (a
    # 10M-row frame came out 27% larger).
    return _table_batches(
        stream, lambda sink, schema: pq.ParquetWriter(sink, schema), group_bytes=ROW_GROUP_BYTES
    )


def _ipc_file(stream: BinaryIO) -> Iterator[bytes]:
    import pyarrow as pa

    # Uncompressed, as Arrow IPC files are usually read (memory-mapped, by any Arrow reader).
    return _table_batches(stream, lambda sink, schema: pa.ipc.new_file(sink, schema))


def _records(stream: BinaryIO) -> Iterator[bytes]:
    """A JSON array of one object per row, written a batch at a time."""
    yield b"["
    first = True
    for rows in _row_slices(stream):
        text = ",\n".join(_json(row) for row in rows)
        if text:
            yield (("\n" if first else ",\n") + text).encode()
            first = False
    yield b"\n]\n" if not first else b"]\n"


def _lines(stream: BinaryIO) -> Iterator[bytes]:
    """JSON lines: one object per row."""
    for rows in _row_slices(stream):
        yield "".join(_json(row) + "\n" for row in rows).encode()


def _row_slices(stream: BinaryIO) -> Iterator[list[dict[str, Any]]]:
    """The table's rows as Python, BATCH_ROWS at a time, each batch validated first."""
    reader = arrow_stream.open_stream(stream, BOUNDS)
    for batch in arrow_stream.batches(reader):
        for start in range(0, batch.num_rows, BATCH_ROWS):
            yield batch.slice(start, BATCH_ROWS).to_pylist()


def _json(value: Any) -> str:
    """JSON text; NaN and infinities (which JSON lacks) as null, dates in ISO 8601, bytes in hex."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_jsonable)
    except ValueError:  # a non-finite float somewhere: the rare case pays for the walk
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, default=_jsonable)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, complex):
        return [value.real, value.imag]
    return str(value)  # Decimal, timedelta, numpy scalars: their usual text


def _table_batches(
    stream: BinaryIO, open_writer: Callable[[Any, Any], Any], group_bytes: int = 0
) -> Iterator[bytes]:
    """Convert an Arrow IPC stream batch by batch, handing out what each batch produced; each
    batch is read within BOUNDS and validated in full before it is converted. With
    `group_bytes`, batches are written in groups of about that many bytes (rows at most
    GROUP_ROWS) — the first alone, so that a download's first piece has read one batch."""
    import pyarrow as pa

    reader = arrow_stream.open_stream(stream, BOUNDS)
    pipe = _Pipe()
    pending: list[Any] = []
    with open_writer(pa.PythonFile(pipe, mode="w"), reader.schema) as writer:
        for number, batch in enumerate(arrow_stream.batches(reader)):
            for start in range(0, batch.num_rows, BATCH_ROWS):
                pending.append(batch.slice(start, BATCH_ROWS))
                if number == 0 or _full(pending, group_bytes):
                    writer.write_table(pa.Table.from_batches(pending, reader.schema))
                    pending.clear()
                    yield pipe.take()
        if pending:
            writer.write_table(pa.Table.from_batches(pending, reader.schema))
    yield pipe.take()


def _full(pending: list[Any], group_bytes: int) -> bool:
    size = sum(int(b.nbytes) for b in pending)
    return size >= group_bytes or sum(int(b.num_rows) for b in pending) >= GROUP_ROWS


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


# -- arrays ------------------------------------------------------------------------------------
def _array_csv(stream: BinaryIO) -> Iterator[bytes]:
    """A 1-D array as one value per line, a 2-D one as one row per line."""
    shape, blocks = _array_blocks(stream)
    if len(shape) not in ARRAY_CSV_DIMENSIONS:
        raise UnknownFormatError(
            f"a {len(shape)}-D array (shape {shape}) is written as npy or json, not csv (which holds 1-D or 2-D)"
        )
    for block in blocks:
        text = io.StringIO()
        rows = block.tolist()
        csv.writer(text, lineterminator="\n").writerows(rows if len(shape) == 2 else ([v] for v in rows))
        yield text.getvalue().encode()


def _array_json(stream: BinaryIO) -> Iterator[bytes]:
    """An array as nested lists (a 0-D array as its value), a block of rows at a time."""
    shape, blocks = _array_blocks(stream)
    if not shape:
        yield (_json(next(blocks).reshape(()).tolist()) + "\n").encode()
        return
    yield b"["
    first = True
    for block in blocks:
        text = ", ".join(_json(row) for row in block.tolist())
        if text:
            yield (("" if first else ", ") + text).encode()
            first = False
    yield b"]\n"


def _array_blocks(stream: BinaryIO) -> tuple[tuple[int, ...], Iterator[Any]]:
    """The shape of the .npy in `stream`, and its rows (along the first axis) a block at a time:
    about CHUNK bytes each, at least one row. An array in Fortran order is read whole (its rows
    are not contiguous); the stream is bounded by max_size all the same."""
    import numpy as np

    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(stream)
    if dtype.hasobject:  # the codec never writes one: it would need pickle
        raise ObjectFormatError(f"the array's dtype {dtype} holds Python objects")
    row_items = math.prod(shape[1:])
    rows = shape[0] if shape else 1
    if fortran and len(shape) > 1:
        whole = _read(stream, math.prod(shape) * dtype.itemsize)
        array = np.frombuffer(whole, dtype=dtype).reshape(shape, order="F")
        return shape, iter([array])
    step = max(1, CHUNK // max(1, row_items * dtype.itemsize))

    def blocks() -> Iterator[Any]:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            data = _read(stream, n * row_items * dtype.itemsize)
            yield np.frombuffer(data, dtype=dtype).reshape((n, *shape[1:]))

    return shape, blocks()


def _read(stream: BinaryIO, size: int) -> bytes:
    """Exactly `size` bytes: a short payload is a damaged one."""
    parts, got = [], 0
    while got < size:
        part = stream.read(min(size - got, CHUNK))
        if not part:
            raise ObjectFormatError(f"the array's data ends {size - got} bytes short")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


_CONVERTERS: dict[tuple[str, str], Callable[[BinaryIO], Iterator[bytes]]] = {
    ("arrow", "csv"): _csv,
    ("arrow", "parquet"): _parquet,
    ("arrow", "arrow"): _ipc_file,
    ("arrow", "json"): _records,
    ("arrow", "jsonl"): _lines,
    ("numpy", "csv"): _array_csv,
    ("numpy", "json"): _array_json,
}
