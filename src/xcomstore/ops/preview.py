"""A look at a stored value without loading it whole: the first rows of a table, the shape and
range of an array, the start of a JSON document. For the CLI's `show` and the UI page."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from xcomstore.core.store import XComStore
from xcomstore.format.header import Header

JSON_EXCERPT = 4096  # characters of a JSON value shown
_ARRAY_CHUNK = 1 << 20  # elements per step when scanning an array for its range


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


def preview(store: XComStore, uri: str, rows: int = 10) -> Preview:
    with store.open_payload(uri) as (header, stream):
        if header.codec == "arrow":
            return _table(header, stream, rows)
        if header.codec == "numpy":
            return _array(header, stream, rows)
        if header.codec == "bytes":
            head = _read_exactly(stream, 64)
            return Preview(header, "bytes", text=head.hex(" "), stats={"first_bytes": len(head)})
        return _json(header, stream)


def _table(header: Header, stream: BinaryIO, rows: int) -> Preview:
    import pyarrow as pa

    reader = pa.ipc.open_stream(stream)
    columns = [(f.name, str(f.type)) for f in reader.schema]
    shown: list[list[Any]] = []
    # Only the first record batches are read: a preview of a huge table costs one batch.
    while len(shown) < rows:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        for row in batch.slice(0, rows - len(shown)).to_pylist():
            shown.append([_cell(v) for v in row.values()])
    stats = {k: header.meta[k] for k in ("rows", "columns") if k in header.meta}
    return Preview(header, "table", columns=columns, rows=shown, stats=stats)


def _array(header: Header, stream: BinaryIO, rows: int) -> Preview:
    import numpy as np

    version = np.lib.format.read_magic(stream)
    read_header = (
        np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read_header(stream)
    count = int(np.prod(shape, dtype=np.int64))
    stats: dict[str, Any] = {"shape": list(shape), "dtype": str(dtype), "fortran_order": fortran}
    first: list[Any] = []
    low = high = None
    done = 0
    # Stream the elements in chunks: the range is computed without holding the array.
    while done < count:
        n = min(_ARRAY_CHUNK, count - done)
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
    return Preview(header, "array", rows=[first], stats=stats)


def _json(header: Header, stream: BinaryIO) -> Preview:
    raw = _read_exactly(stream, JSON_EXCERPT * 4 + 1).decode("utf-8", errors="replace")
    if len(raw) <= JSON_EXCERPT * 4:
        with contextlib.suppress(json.JSONDecodeError):
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


def _cell(value: Any) -> Any:
    """A JSON-friendly, readable cell."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
