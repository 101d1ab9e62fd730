"""Tables as an Arrow IPC stream: pyarrow Tables, pandas and polars DataFrames and Series.

Arrow IPC is the in-memory layout written out, so writing and reading are close to a memory
copy, and Arrow compresses each buffer itself (zstd or lz4) on all cores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from xcomstore.codecs.arrow_blocks import TableBlocks, split
from xcomstore.codecs.arrow_checks import check_faithful, series_name, series_name_back
from xcomstore.codecs.arrow_columns import charge_cells, read_contiguous, validated
from xcomstore.codecs.arrow_ipc import CheckedIpcStream
from xcomstore.codecs.base import Codec, Description, root_module
from xcomstore.errors import ObjectFormatError, RejectedValueError
from xcomstore.format.streams import budget_of

_SERIES_COLUMN = "values"
# Batches of about 4 MiB: a pull holds one batch (and, compressed, its decompressed copy) beside
# the assembled columns, so an 80 MB zstd frame peaks at 1.2x its size (16 MiB batches: 1.9x),
# and a preview reads only the first batch.
_BATCH_BYTES = 4 << 20
_FLAVOURS = {
    ("pyarrow", "Table"): "pyarrow.Table",
    ("pandas", "DataFrame"): "pandas.DataFrame",
    ("pandas", "Series"): "pandas.Series",
    ("polars", "DataFrame"): "polars.DataFrame",
    ("polars", "Series"): "polars.Series",
}
# Arrow's IPC buffer compression names.
_IPC_COMPRESSION = {"zstd": "zstd", "lz4": "lz4_frame"}


def _flavour(value: Any) -> str | None:
    return _FLAVOURS.get((root_module(value), type(value).__name__))


#: The table libraries a read may ask for (`to=`), and the flavour each one means.
TARGETS = {"arrow": "pyarrow.Table", "pandas": "pandas.DataFrame", "polars": "polars.DataFrame"}
flavour_of = _flavour  # the flavour of a table value, or None for anything else


def as_table(value: Any) -> Any:
    """A table value (a Table, or a pandas or polars frame or series) as a pyarrow Table."""
    return _to_table(value, _flavour(value))


def from_table(table: Any, flavour: str, meta: Mapping[str, Any]) -> Any:
    """`table` as a value of `flavour`: pandas never imported for the others, nor polars."""
    return _from_table(table, flavour, meta)


class ArrowCodec(Codec):
    name = "arrow"
    native_compression = frozenset(_IPC_COMPRESSION)

    def accepts(self, value: Any) -> bool:
        return _flavour(value) is not None

    def describe(self, value: Any) -> Description:
        """The value's description; RejectedValueError, before anything is written (a push
        describes first), if Arrow cannot store it as it is."""
        flavour = _flavour(value) or "table"
        check_faithful(value, flavour)
        short = flavour.rpartition(".")[2]
        if short == "Series":
            name = series_name(value.name) if flavour == "pandas.Series" else value.name
            meta = {"flavour": flavour, "name": name, "rows": len(value)}
            return Description(flavour, f"Series {value.dtype} {len(value)}", meta)
        rows, cols = (value.num_rows, value.num_columns) if short == "Table" else value.shape
        meta = {"flavour": flavour, "rows": rows, "columns": cols}
        return Description(flavour, f"{short} {rows}×{cols}", meta)

    def type_name(self, value: Any) -> str:
        return _flavour(value) or "table"  # describe() would also scan object columns

    def size_hint(self, value: Any) -> int:
        flavour = _flavour(value)
        if flavour == "pyarrow.Table":
            return int(value.nbytes)
        if flavour and flavour.startswith("polars"):
            return int(value.estimated_size())
        # pandas: shallow memory use; object columns are undercounted, which only means the
        # value gets measured exactly before deciding.
        usage = value.memory_usage(deep=False)
        return int(usage.sum() if hasattr(usage, "sum") else usage)

    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        import pyarrow as pa

        table = _encodable(value, _flavour(value))
        options = pa.ipc.IpcWriteOptions(compression=_IPC_COMPRESSION.get(compression))
        rows = max(1024, _BATCH_BYTES // max(1, table.nbytes // max(1, table.num_rows)))
        with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
            writer.write_table(table, max_chunksize=rows)
        return int(table.nbytes) if compression in _IPC_COMPRESSION else None

    def blocks(self, value: Any) -> TableBlocks:
        """The value as blocks, one column of one row group each (format/blocks.py lays them
        out): how tables are stored, so that a read of some columns reads only theirs."""
        return split(_encodable(value, _flavour(value)))

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        import pyarrow as pa

        flavour = str(meta.get("flavour"))
        rows = meta.get("rows")
        budget = budget_of(source)
        # trust boundary: pyarrow sees each message only once its claimed sizes fit the budget.
        with pa.ipc.open_stream(CheckedIpcStream(source, budget)) as reader:
            # A pyarrow Table is fine in batches; frames need whole columns, assembled as read.
            if flavour == "pyarrow.Table" or not isinstance(rows, int):
                batches = [validated(batch) for batch in reader]
                if flavour != "pyarrow.Table":  # converted below: what that costs is bounded too
                    for batch in batches:
                        charge_cells(batch, budget)
                table = pa.Table.from_batches(batches, reader.schema)
            else:
                table = read_contiguous(reader, rows, budget)
        return _from_table(table, flavour, meta)


def _to_table(value: Any, flavour: str | None) -> Any:
    import pyarrow as pa

    if flavour == "pyarrow.Table":
        return value
    if flavour == "pandas.DataFrame":
        return pa.Table.from_pandas(value)
    if flavour == "pandas.Series":
        return pa.Table.from_pandas(value.to_frame(_SERIES_COLUMN))
    if flavour == "polars.DataFrame":
        return value.to_arrow()
    if flavour == "polars.Series":
        return value.to_frame(_SERIES_COLUMN).to_arrow()
    raise TypeError(f"not a table: {type(value).__name__}")


def _from_table(table: Any, flavour: str, meta: Mapping[str, Any]) -> Any:
    if flavour == "pyarrow.Table":
        return table
    if flavour.startswith("pandas"):
        # Whole numeric columns become pandas blocks without a copy; self_destruct frees each
        # other column once converted.
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        if flavour == "pandas.Series":
            return frame[_SERIES_COLUMN].rename(series_name_back(meta.get("name")))
        return frame
    if flavour.startswith("polars"):
        import polars as pl

        frame = pl.from_arrow(table)
        if flavour == "polars.Series":
            return frame.to_series().alias(str(meta.get("name", "")))  # type: ignore[union-attr]
        return frame
    # trust boundary: the flavour is the header's word (meta): one xcomstore never writes is the
    # object's fault, whatever else in it verified.
    raise ObjectFormatError(f"the header names a table flavour xcomstore never writes: {flavour!r}")


def _encodable(value: Any, flavour: str | None) -> Any:
    """The value as a pyarrow Table; what Arrow refuses is a RejectedValueError naming the column."""
    import pyarrow as pa

    try:
        return _to_table(value, flavour)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        if isinstance(exc, RejectedValueError):
            raise
        raise RejectedValueError(
            f"the {flavour}{_failing_column(value, flavour)} cannot be stored as Arrow: "
            f"{type(exc).__name__}: {exc}. Nothing was stored."
        ) from exc


def _failing_column(value: Any, flavour: str | None) -> str:
    """ " (column 'x')" for the first pandas column Arrow cannot convert, else ""."""
    import pyarrow as pa

    if flavour != "pandas.DataFrame":
        return ""
    for name, column in value.items():
        try:
            pa.array(column, from_pandas=True)
        except (pa.ArrowException, ValueError, TypeError):
            return f" (column {name!r})"
    return ""
