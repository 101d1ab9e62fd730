"""What a read asks for beyond the value: some columns of a table (`columns=`), a library (`to=`).

    store.read(uri, columns=["a", "b"], to="polars")

`to` is "arrow", "pandas" or "polars" for tables (pyarrow Tables, pandas and polars frames),
"numpy" for arrays; `columns` names columns of a table, in the order wanted. Neither is ever
ignored: columns of a dict, a table library for an array, a missing column are each a
ProjectionError that names what the value has.

Tables stored as blocks are projected as they are read (core/table_reads.py: only the wanted
columns' bytes are fetched); everything else (inline values, objects written before) is read
whole and then projected here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xcomstore.codecs import arrow
from xcomstore.codecs.arrow_blocks import pandas_index_columns
from xcomstore.codecs.base import root_module
from xcomstore.errors import ProjectionError

NUMPY = "numpy"
TARGETS = (*arrow.TARGETS, NUMPY)
_FRAMES = frozenset(arrow.TARGETS.values())


@dataclass(frozen=True)
class Wants:
    """The columns and the library a read asks for; None: as stored."""

    columns: tuple[str, ...] | None = None
    to: str | None = None

    @classmethod
    def of(cls, columns: Sequence[str] | None = None, to: str | None = None) -> Wants:
        """Checked arguments of a read: ProjectionError for an unknown `to` or malformed `columns`."""
        if to is not None and to not in TARGETS:
            raise ProjectionError(f"to={to!r} is not one of {', '.join(map(repr, TARGETS))}")
        if columns is None:
            return cls(None, to)
        if isinstance(columns, (str, bytes)) or not all(isinstance(c, str) for c in columns):
            raise ProjectionError(f"columns must be a list of column names, not {columns!r}")
        names = tuple(columns)
        twice = sorted({c for c in names if names.count(c) > 1})
        if twice:
            raise ProjectionError(f"columns names {', '.join(map(repr, twice))} more than once")
        return cls(names, to)

    @property
    def whole(self) -> bool:
        return self.columns is None and self.to is None


WHOLE = Wants()


def flavour_for(stored: str, wants: Wants) -> str:
    """The flavour a table stored as `stored` is returned as; ProjectionError if `wants` does
    not fit it (a Series has no columns, and converts only within its own library)."""
    if stored in _FRAMES:
        if wants.to == NUMPY:
            raise ProjectionError(f"a {stored} reads as 'arrow', 'pandas' or 'polars', not as 'numpy'")
        return arrow.TARGETS[wants.to] if wants.to else stored
    if wants.columns is not None:
        raise ProjectionError(f"a {stored} has no columns to select")
    if wants.to is not None and not stored.startswith(_library(wants.to)):
        raise ProjectionError(f"a {stored} reads only as itself, not as {wants.to!r}")
    return stored


def check_kind(codec: str, type_name: str, wants: Wants) -> None:
    """Refuse, before its payload is read, what a value of `codec` cannot give."""
    if wants.whole or codec == "arrow":
        return
    if codec == "numpy" and wants.columns is None and wants.to == NUMPY:
        return
    raise ProjectionError(_refusal(type_name, wants))


def selection(names: Sequence[str], hidden: Sequence[str], wants: Wants) -> list[int]:
    """Which of a table's columns (`names`) to read, in the order wanted; `hidden` are pandas'
    index columns, kept when the table becomes a pandas frame. ProjectionError for a missing one."""
    if wants.columns is None:
        return list(range(len(names)))
    position = {name: i for i, name in reversed(list(enumerate(names)))}
    missing = [c for c in wants.columns if c not in position]
    if missing:
        there = [n for n in names if n not in hidden]
        raise ProjectionError(
            f"the table has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, there)) or '(none)'}"
        )
    return [position[c] for c in wants.columns] + [position[h] for h in hidden if h not in wants.columns]


def apply(value: Any, wants: Wants) -> Any:
    """A value read whole, projected and converted as `wants` says."""
    if wants.whole:
        return value
    flavour = arrow.flavour_of(value)
    if flavour is None:
        if root_module(value) == NUMPY and type(value).__name__ == "ndarray":
            check_kind(NUMPY, "numpy.ndarray", wants)
            return value
        raise ProjectionError(_refusal(f"{type(value).__module__}.{type(value).__qualname__}", wants))
    target = flavour_for(flavour, wants)
    if wants.columns is not None:
        value = _select(value, flavour, wants)
    if target == flavour:
        return value
    return arrow.from_table(arrow.as_table(value), target, {})


def _select(value: Any, flavour: str, wants: Wants) -> Any:
    assert wants.columns is not None
    if flavour == "pandas.DataFrame":
        selection([str(c) for c in value.columns], [], wants)
        return value.loc[:, list(wants.columns)]
    names = list(value.schema.names) if flavour == "pyarrow.Table" else list(value.columns)
    hidden = pandas_index_columns(value.schema) if flavour == "pyarrow.Table" else []
    selection(names, hidden, wants)
    return value.select(list(wants.columns))


def _library(to: str) -> str:
    return "pyarrow" if to == "arrow" else to


def _refusal(type_name: str, wants: Wants) -> str:
    if wants.columns is not None:
        return f"a {type_name} has no columns to select (columns= is for tables)"
    return f"a {type_name} cannot be read as {wants.to!r} (to= converts tables, and arrays to 'numpy')"
