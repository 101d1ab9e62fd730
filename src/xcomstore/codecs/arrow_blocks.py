"""Tables cut into blocks and put back together: one Arrow IPC stream per column and row group.

format/blocks.py lays the blocks out, compresses, encrypts and verifies them; this module knows
what is in them. Every column is cut at the same rows (the row groups), about _BLOCK_BYTES of
the widest column each, so that a reader of a few columns reads only their blocks, and a reader
of all of them can put each column back in one piece for pandas and polars.

A block's IPC stream is never compressed by Arrow (the block is compressed whole): one whose
batches say they are is refused, so pyarrow's buffers are always slices of the block's bytes,
which the read's Budget has paid for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from xcomstore.codecs.arrow_columns import COLUMNS, charge_cells, validated
from xcomstore.codecs.arrow_ipc import body_length
from xcomstore.errors import ObjectFormatError
from xcomstore.format.blocks import Raw
from xcomstore.format.streams import Budget

_BLOCK_BYTES = 4 << 20
_MIN_ROWS = 1024
_CONTINUATION = b"\xff\xff\xff\xff"


@dataclass(frozen=True)
class TableBlocks:
    """A table as blocks: its column names, the rows of each row group, its schema (Arrow IPC),
    and the blocks' raw bytes, made as they are read, column by column."""

    columns: tuple[str, ...]
    groups: tuple[int, ...]
    schema: bytes
    blocks: Iterator[list[Raw]]


def split(table: Any) -> TableBlocks:
    """`table` (a pyarrow Table) as blocks."""
    rows = table.num_rows
    widest = max((table.column(i).nbytes for i in range(table.num_columns)), default=0)
    per_group = max(_MIN_ROWS, _BLOCK_BYTES * max(1, rows) // max(1, widest))
    groups = tuple(min(per_group, rows - start) for start in range(0, rows, per_group))

    def blocks() -> Iterator[list[Raw]]:
        for index in range(table.num_columns):
            start = 0
            for count in groups:
                yield _block(table, index, start, count)
                start += count

    return TableBlocks(tuple(table.column_names), groups, table.schema.serialize().to_pybytes(), blocks())


def _block(table: Any, index: int, start: int, count: int) -> list[Raw]:
    """A block's IPC stream as the pieces Arrow writes: its small messages, and the column's
    own buffers (pyarrow hands a Python sink views of them, not copies)."""
    import pyarrow as pa

    field = table.schema.field(index)
    part = pa.Table.from_arrays([table.column(index).slice(start, count)], schema=pa.schema([field]))
    sink = PieceSink()
    with pa.ipc.new_stream(sink, part.schema) as writer:
        writer.write_table(part)
    return sink.pieces


class PieceSink:
    """A write-only file for pyarrow's stream writer that keeps what it is given, as views (the
    large ones are of Arrow's own buffers: nothing is copied)."""

    closed = False

    def __init__(self) -> None:
        self.pieces: list[Raw] = []

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")  # pyarrow's buffers export signed bytes
        self.pieces.append(view)
        return view.nbytes

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def read_schema(raw: bytes, columns: Sequence[str]) -> Any:
    """The table's schema from the index, which must name the index's columns in its order."""
    import pyarrow as pa

    try:
        schema = pa.ipc.read_schema(pa.py_buffer(raw))
    except Exception as exc:  # trust boundary: pyarrow's complaint about hostile bytes (even an OSError)
        raise ObjectFormatError(f"the table's schema is invalid: {type(exc).__name__}: {exc}") from exc
    if list(schema.names) != list(columns):
        raise ObjectFormatError("the table's schema does not name the columns of its index")
    return schema


def assemble(
    schema: Any,
    wanted: Sequence[int],
    groups: Sequence[int],
    raw_blocks: Callable[[int], Iterable[bytes | memoryview]],
    budget: Budget,
    contiguous: bool,
) -> Any:
    """The Table of the `wanted` columns (indexes into `schema`), from each one's raw blocks in
    row order (`raw_blocks(column)`), validated block by block. `contiguous`: numeric columns
    in one piece each (pandas and polars want them so), else as Arrow read them (no copy)."""
    import pyarrow as pa

    rows = sum(groups)
    fields = [schema.field(i) for i in wanted]
    if contiguous:
        # trust boundary: `groups` is the index's; the joined columns are charged before joining.
        budget.reserve(rows * sum(_width(f.type) for f in fields), COLUMNS)
    columns = []
    for index, field in zip(wanted, fields, strict=True):
        chunks: list[Any] = []
        raws = iter(raw_blocks(index))
        for count in groups:
            chunks.extend(_read_block(next(raws), field, count).chunks)
        column = pa.chunked_array(chunks, type=field.type)
        if contiguous and _width(field.type) and column.num_chunks > 1:
            column = pa.concat_arrays(column.chunks)
        columns.append(column)
    table = pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=schema.metadata))
    if contiguous:
        charge_cells(table, budget)
    return table


def _width(arrow_type: Any) -> int:
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return int(arrow_type.bit_width // 8)
    return 0


def _read_block(raw: bytes | memoryview, field: Any, rows: int) -> Any:
    """One block's column, as a one-column Table checked against the schema and the row group."""
    import pyarrow as pa

    _refuse_compressed_batches(raw)
    try:
        with pa.ipc.open_stream(pa.py_buffer(raw)) as reader:
            if len(reader.schema) != 1 or not reader.schema.field(0).equals(field):
                raise ObjectFormatError(f"a block of column {field.name!r} holds another column")
            part = validated(reader.read_all())
    except ObjectFormatError:
        raise
    except Exception as exc:  # trust boundary: pyarrow's complaint about hostile bytes (even an OSError)
        raise ObjectFormatError(
            f"a block of column {field.name!r} is invalid: {type(exc).__name__}: {exc}"
        ) from exc
    if part.num_rows != rows:
        raise ObjectFormatError(
            f"a block of column {field.name!r} has {part.num_rows} rows, its index says {rows}"
        )
    return part.column(0)


def _refuse_compressed_batches(raw: bytes | memoryview) -> None:
    """trust boundary: pyarrow allocates what a compressed IPC buffer claims; blocks are never
    written so, and a block that is would have pyarrow allocate more than the budget knows."""
    view, at = memoryview(raw), 0
    while at + 8 <= len(view) and bytes(view[at : at + 4]) == _CONTINUATION:
        length = int.from_bytes(view[at + 4 : at + 8], "little", signed=True)
        if length <= 0:
            return
        metadata = bytes(view[at + 8 : at + 8 + length])
        if len(metadata) < length:
            return  # truncated: pyarrow says so
        size, batch = body_length(metadata)
        if batch is not None and batch.table(3) is not None:
            raise ObjectFormatError("a block holds compressed Arrow buffers, which xcomstore never writes")
        at += 8 + length + size


def pandas_index_columns(schema: Any) -> list[str]:
    """The columns pandas keeps its index in (named in the schema's pandas metadata)."""
    raw = (schema.metadata or {}).get(b"pandas")
    try:
        found = json.loads(raw)["index_columns"] if raw else []
    except (ValueError, KeyError, TypeError):
        return []
    names = set(schema.names)
    return (
        [name for name in found if isinstance(name, str) and name in names] if isinstance(found, list) else []
    )
