"""Reading an Arrow stream into one contiguous array per column, with memory near 1× the table.

pandas and polars want each column in one piece, but a stream comes in record batches, and
each batch's columns often share one buffer (an uncompressed batch is read as one block).
Reading the whole table first and converting it after holds the batches *and* the joined
columns: twice the value. Here numeric columns are copied batch by batch into arrays of the
final length, and each batch is dropped once copied, so the peak is the value plus one batch;
the finished arrays then become the table's columns without another copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from xcomstore.errors import ObjectFormatError
from xcomstore.format.streams import Budget

COLUMNS = "preallocated columns"
CELLS = "cells to convert"
T = TypeVar("T")


def read_contiguous(reader: Any, rows: int, budget: Budget | None = None) -> Any:
    """The stream of `reader` (a pyarrow RecordBatchStreamReader) as a Table of `rows` rows
    whose columns are single chunks."""
    import pyarrow as pa

    # trust boundary: `rows` is the header's, and sizes every numeric column up front.
    (budget or Budget()).reserve(rows * _preallocated(reader.schema), COLUMNS)
    columns = [_column_for(field.type, rows) for field in reader.schema]
    filled = 0
    for batch in reader:
        if filled + batch.num_rows > rows:
            raise ObjectFormatError(f"the table has more rows than its header declares {rows}")
        charge_cells(batch, budget or Budget())
        for column, chunk in zip(columns, validated(batch).columns, strict=True):
            column.add(chunk, filled)
        filled += batch.num_rows
    if filled != rows:
        raise ObjectFormatError(f"the table has {filled} rows, its header declares {rows}")
    arrays = [column.finish() for column in columns]
    return validated(pa.Table.from_arrays(arrays, schema=reader.schema))


def charge_cells(batch: Any, budget: Budget) -> None:
    """Claim what converting `batch` to pandas or polars costs at least: a byte per cell, a
    bit for booleans.

    trust boundary: some Arrow columns hold rows without bytes (the null type, run-end
    encoded, empty structs): a batch of a few hundred bytes can declare 2**31 null rows, and
    pandas makes an object array of them, 8 bytes each. Every other column a frame is stored
    from holds at least that much data per cell, so a legitimate batch fits its budget; a
    legitimate all-null column of millions of rows only within the slack."""
    import pyarrow as pa

    bits = sum(1 if pa.types.is_boolean(field.type) else 8 for field in batch.schema)
    budget.reserve(batch.num_rows * bits // 8, CELLS)


def validated(data: T) -> T:
    """`data` (a RecordBatch or Table), once Arrow has checked all of it.

    trust boundary: pyarrow reads an IPC batch trusting its offsets, indices and lengths; a
    batch whose string offsets decrease or point past the data makes an invalid Table, which
    aborts the process when used, and crashes polars' from_arrow. validate(full=True) checks
    every offset, dictionary index and UTF-8 string, in C++ at memory speed: nothing built from
    the payload reaches pandas, polars or the caller before it."""
    import pyarrow as pa

    try:
        data.validate(full=True)  # type: ignore[attr-defined]
    except (pa.ArrowException, ValueError) as exc:
        raise ObjectFormatError(f"the Arrow data is invalid: {type(exc).__name__}: {exc}") from exc
    return data


def _is_numeric(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type))


def _preallocated(schema: Any) -> int:
    """Bytes per row that _NumericColumn allocates before any batch is read."""
    return sum(field.type.bit_width // 8 for field in schema if _is_numeric(field.type))


def _column_for(arrow_type: Any, rows: int) -> _Column:
    if _is_numeric(arrow_type):
        return _NumericColumn(arrow_type, rows)
    return _ChunkedColumn(arrow_type)


class _Column(Protocol):
    def add(self, chunk: Any, offset: int) -> None:
        """Take the rows of `chunk`, which start at row `offset` of the table."""

    def finish(self) -> Any:
        """The whole column, as a pyarrow Array or ChunkedArray."""


class _ChunkedColumn:
    """Any other type: its chunks, each copied out of its batch so the batch can be freed,
    joined at the end (pandas converts these element by element anyway)."""

    def __init__(self, arrow_type: Any, chunks: Iterable[Any] = ()) -> None:
        self.type = arrow_type
        self.chunks = list(chunks)

    def add(self, chunk: Any, offset: int) -> None:
        import pyarrow as pa

        self.chunks.append(pa.concat_arrays([chunk]))

    def finish(self) -> Any:
        import pyarrow as pa

        return pa.chunked_array(self.chunks, type=self.type)


class _NumericColumn:
    """Integers and floats without nulls: copied into a NumPy array of the final length, which
    Arrow then wraps without copying. A null turns it into a chunked column from there on.

    Buffers are handled directly: pyarrow's to_numpy() and pa.array(ndarray) import pandas
    (0.2 s), which a polars user should not pay for."""

    def __init__(self, arrow_type: Any, rows: int) -> None:
        import numpy as np
        import pyarrow as pa

        self.type = arrow_type
        kind = (
            "f"
            if pa.types.is_floating(arrow_type)
            else "i"
            if pa.types.is_signed_integer(arrow_type)
            else "u"
        )
        self.dtype = np.dtype(f"<{kind}{arrow_type.bit_width // 8}")
        self.values = np.empty(rows, dtype=self.dtype)
        self.fallback: _ChunkedColumn | None = None

    def add(self, chunk: Any, offset: int) -> None:
        import numpy as np

        if self.fallback is None and chunk.null_count:
            # The rows so far stay where they are, as the first chunk of a chunked column.
            self.fallback = _ChunkedColumn(self.type, [self._wrap(self.values[:offset])])
        if self.fallback is not None:
            self.fallback.add(chunk, offset)
            return
        data = chunk.buffers()[1]
        if data is not None:  # None only for an empty chunk
            rows = np.frombuffer(data, self.dtype, len(chunk), chunk.offset * self.dtype.itemsize)
            self.values[offset : offset + len(chunk)] = rows

    def finish(self) -> Any:
        if self.fallback is not None:
            return self.fallback.finish()
        return self._wrap(self.values)

    def _wrap(self, values: Any) -> Any:
        import pyarrow as pa

        return pa.Array.from_buffers(self.type, len(values), [None, pa.py_buffer(values)])
