"""A look at a stored value without loading it whole: the first rows of a table, the shape and
range of an array, the start of a JSON document. For the CLI's `show` and the UI page.

The store is untrusted (anyone who can write to it can reseal what they wrote), and a preview
runs inside the Airflow API server, so everything here is bounded by what is shown, not by what
the object claims: at most MAX_ROWS rows and MAX_COLUMNS columns, cells cut to CELL_CHARS
characters, and at most PREVIEW_BYTES of the payload read. An Arrow stream is read through
arrow_stream's checks and its first batch validated in full before a row is converted; a .npy
header with an outsized or object dtype is refused. Whatever fails is an ObjectFormatError
naming the object, never another exception (nor, from a damaged table, a segfault).
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from xcomstore.codecs.numpy_zstd import NpyView
from xcomstore.core.store import XComStore
from xcomstore.errors import ObjectFormatError, XComStoreError
from xcomstore.format.header import Header
from xcomstore.ops import arrow_stream

JSON_EXCERPT = 4096  # characters of a JSON value shown
MAX_ROWS = 100  # rows (or array elements) shown, whatever is asked
MAX_COLUMNS = 100  # table columns shown
CELL_CHARS = 200  # characters of one cell; longer ones end in "…"
CELL_ITEMS = 20  # elements of a nested cell (list, struct, map) converted
PREVIEW_BYTES = 16 << 20  # of the (decompressed) payload read, and of a batch once decompressed
MAX_ITEMSIZE = 1 << 16  # bytes of one array element: a '|V16777216' dtype is refused
_ARRAY_CHUNK = 1 << 20  # bytes per step when scanning an array for its range
_BOUNDS = arrow_stream.Bounds(
    metadata=PREVIEW_BYTES, body=PREVIEW_BYTES, decompressed=PREVIEW_BYTES, total=PREVIEW_BYTES
)


@dataclass
class Preview:
    header: Header
    kind: str  # "table", "array", "json" or "bytes"
    columns: list[tuple[str, str]] = field(default_factory=list)  # name, type
    rows: list[list[Any]] = field(default_factory=list)
    text: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.header.summary,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": self.rows,
            "text": self.text,
            "stats": self.stats,
        }


def compression(header: Header) -> str:
    """How the payload is really compressed. A codec that compresses natively (Arrow, its own
    buffers) gets an uncompressed stream: its header says "none", its meta says what it used."""
    return str(header.meta.get("compression", header.compression))


def header_json(header: Header) -> dict[str, Any]:
    """The header as JSON, with the payload's real compression."""
    doc: dict[str, Any] = json.loads(header.to_bytes())
    doc["compression"] = compression(header)
    return doc


def preview(store: XComStore, uri: str, rows: int = 10) -> Preview:
    """The start of the value at `uri`; ObjectFormatError (naming it) if it cannot be shown."""
    rows = max(1, min(rows, MAX_ROWS))
    try:
        with store.open_payload(uri) as (header, stream):
            try:
                return _preview(header, stream, rows)
            except XComStoreError:
                raise
            except Exception as exc:
                # A damaged payload fails in pyarrow, numpy or a decompressor — gzip's with an
                # OSError, which open_payload would report as the store failing: it is the object.
                raise _unreadable(exc, uri) from exc
    except XComStoreError:
        raise
    except Exception as exc:
        raise _unreadable(exc, uri) from exc


def _unreadable(exc: Exception, uri: str) -> ObjectFormatError:
    return ObjectFormatError(f"cannot be previewed: {type(exc).__name__}: {_short(str(exc))}", uri=uri)


def _preview(header: Header, stream: BinaryIO, rows: int) -> Preview:
    if header.codec == "arrow":
        return _table(header, stream, rows)
    if header.codec == "numpy":
        return _array(header, stream, rows)
    if header.codec == "bytes":
        head = _read_exactly(stream, 64)
        return Preview(header, "bytes", text=head.hex(" "), stats={"first_bytes": len(head)})
    return _json(header, stream)


# -- tables ------------------------------------------------------------------------------------
def _table(header: Header, stream: BinaryIO, rows: int) -> Preview:
    reader = arrow_stream.open_stream(stream, _BOUNDS)
    fields = list(reader.schema)[:MAX_COLUMNS]
    columns = [(_short(f.name), _short(str(f.type))) for f in fields]
    shown: list[list[Any]] = []
    # The first record batch only (the codec writes ~4 MiB batches), validated before use.
    for batch in arrow_stream.batches(reader, limit=1):
        first = batch.slice(0, rows)
        cells = [[_cell(_bounded(value)) for value in first.column(i)] for i in range(len(fields))]
        shown = (
            [list(row) for row in zip(*cells, strict=True)] if cells else [[] for _ in range(first.num_rows)]
        )
    stats = {k: header.meta[k] for k in ("rows", "columns") if k in header.meta}
    if len(reader.schema) > MAX_COLUMNS:
        stats["columns_shown"] = MAX_COLUMNS
    return Preview(header, "table", columns=columns, rows=shown, stats=stats)


def _bounded(scalar: Any, budget: list[int] | None = None) -> Any:
    """An Arrow scalar as Python, nested values cut to CELL_ITEMS elements (CELL_CHARS * 4
    in all): a cell holding a list of millions is never converted whole."""
    import pyarrow as pa

    budget = [CELL_CHARS * 4] if budget is None else budget
    budget[0] -= 1
    if not scalar.is_valid:
        return None
    if isinstance(scalar, pa.DictionaryScalar):
        return _bounded(scalar.value, budget)
    if isinstance(scalar, pa.StructScalar):
        items = list(scalar.items())
        return {_short(k): _bounded(v, budget) for k, v in items[:CELL_ITEMS] if budget[0] > 0}
    values = getattr(scalar, "values", None)
    if isinstance(values, pa.Array):  # lists, maps
        n = min(len(values), CELL_ITEMS)
        cut = [_bounded(values[i], budget) for i in range(n) if budget[0] > 0]
        return cut + (["…"] if len(values) > len(cut) else [])
    if isinstance(scalar, (pa.StringScalar, pa.LargeStringScalar, pa.BinaryScalar, pa.LargeBinaryScalar)):
        data = scalar.as_buffer()
        head = bytes(data[: CELL_CHARS * 4]) if data is not None else b""
        text = head.decode("utf-8", errors="replace") if "string" in str(scalar.type) else head.hex(" ")
        return text if len(head) == (data.size if data is not None else 0) else _Cut(text)
    return scalar.as_py()


class _Cut(str):
    """Text known to be only the start of a longer value."""


def _cell(value: Any) -> Any:
    """A JSON-friendly, readable cell of at most CELL_CHARS characters."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, bytes):  # from as_py() of a type without its own case (fixed-size binary)
        value = value.hex(" ")
    text = value if isinstance(value, str) else _text(value)
    if len(text) > CELL_CHARS or isinstance(value, _Cut):
        return str(text[: CELL_CHARS - 1]) + "…"
    return str(text)


def _text(value: Any) -> str:
    """Nested values as JSON; anything else (a datetime, a Decimal) as its str()."""
    if isinstance(value, (list, tuple, dict)):
        with contextlib.suppress(TypeError, ValueError):
            return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _short(text: str, limit: int = CELL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- arrays ------------------------------------------------------------------------------------
def _array(header: Header, stream: BinaryIO, rows: int) -> Preview:
    import numpy as np

    stream = NpyView(stream)  # type: ignore[assignment]  # zstd frames: the .npy they hold

    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(stream)
    _check(shape, dtype)
    count = math.prod(shape)
    stats: dict[str, Any] = {"shape": list(shape), "dtype": str(dtype), "fortran_order": fortran}
    first: list[Any] = []
    low = high = None
    done = 0
    # The range of the first PREVIEW_BYTES only, read in steps: never the whole array.
    limit = min(count, PREVIEW_BYTES // dtype.itemsize) if dtype.itemsize else 0
    while done < limit:
        n = min(max(1, _ARRAY_CHUNK // dtype.itemsize), limit - done)
        data = _read_exactly(stream, n * dtype.itemsize)
        chunk = np.frombuffer(data[: len(data) - len(data) % dtype.itemsize], dtype=dtype)
        if chunk.size == 0:
            break
        if not first:
            first = [_cell(v) for v in chunk[:rows].tolist()]
        if dtype.kind in "biufmM":
            low = chunk.min() if low is None else min(low, chunk.min())
            high = chunk.max() if high is None else max(high, chunk.max())
        done += chunk.size
    if low is not None:
        stats.update(min=_cell(low.item()), max=_cell(high.item()))  # type: ignore[union-attr]
    if done < count:
        stats["range_of"] = done  # min and max are of the first `done` elements
    return Preview(header, "array", rows=[first], stats=stats)


def _check(shape: tuple[int, ...], dtype: Any) -> None:
    if any(n < 0 for n in shape):
        raise ObjectFormatError(f"the array's shape {_short(str(shape))} has a negative dimension")
    if dtype.hasobject:
        raise ObjectFormatError(f"the array's dtype {_short(str(dtype))} holds Python objects")
    if dtype.itemsize > MAX_ITEMSIZE:
        raise ObjectFormatError(
            f"the array's elements are {dtype.itemsize} bytes each (dtype {_short(str(dtype))}): "
            f"a preview shows elements of at most {MAX_ITEMSIZE} bytes"
        )


# -- JSON --------------------------------------------------------------------------------------
def _json(header: Header, stream: BinaryIO) -> Preview:
    raw = _read_exactly(stream, JSON_EXCERPT * 4 + 1).decode("utf-8", errors="replace")
    if len(raw) <= JSON_EXCERPT * 4:
        with contextlib.suppress(ValueError, RecursionError):  # shown as it is stored
            raw = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    truncated = len(raw) > JSON_EXCERPT
    return Preview(header, "json", text=raw[:JSON_EXCERPT] + ("…" if truncated else ""))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes: decompressing streams may return less per read than asked."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)
