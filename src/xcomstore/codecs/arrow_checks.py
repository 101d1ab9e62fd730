"""Refusing tables that Arrow would store wrong, before anything is written.

Arrow keeps a column as one type. Given a pandas object column of several Python types it
either fails with a raw error or quietly picks one (ints and floats become floats, str and
bytes become bytes); a polars Object column becomes the objects' memory addresses; pandas
cannot write duplicate column names. Each of these is a RejectedValueError naming the column
(the caller adds the XCom's name), so a value is stored faithfully or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from xcomstore.errors import RejectedValueError

# infer_dtype's verdicts that always mean several types; plain "mixed" may be one type Arrow
# nests (lists, dicts), so its values are looked at one by one.
_SEVERAL_TYPES = ("mixed-integer", "mixed-integer-float")


def check_faithful(value: Any, flavour: str) -> None:
    """Raise RejectedValueError if Arrow cannot store `value` (of `flavour`) as it is."""
    if flavour == "pandas.DataFrame":
        _check_unique(value.columns, flavour)
        for name, column in value.items():
            _check_pandas_column(column, f"column {name!r} of the {flavour}")
        _check_pandas_index(value.index, flavour)
    elif flavour == "pandas.Series":
        _check_pandas_column(value, f"the {flavour}")
        _check_pandas_index(value.index, flavour)
    elif flavour == "polars.DataFrame":
        for name, dtype in value.schema.items():
            _check_polars_dtype(dtype, f"column {name!r} of the {flavour}")
    elif flavour == "polars.Series":
        _check_polars_dtype(value.dtype, f"the {flavour} {value.name!r}")


def series_name(name: Any) -> Any:
    """A pandas Series name as JSON: a tuple (a MultiIndex label) as a list; RejectedValueError
    for a name JSON cannot carry, rather than storing its text in its place."""
    if name is None or isinstance(name, (str, int)):  # bool is an int
        return name
    if isinstance(name, float) and math.isfinite(name):
        return name
    if isinstance(name, tuple):
        return [series_name(part) for part in name]
    raise RejectedValueError(
        f"the pandas.Series is named {name!r}, a {type(name).__name__}, which xcomstore cannot store "
        "as it is: name it with a string, a number or a tuple of those (series.rename(...)). "
        "Nothing was stored."
    )


def series_name_back(name: Any) -> Any:
    """The Series name `series_name` wrote: lists are tuples again."""
    return tuple(series_name_back(part) for part in name) if isinstance(name, list) else name


def _check_unique(names: Iterable[Any], flavour: str) -> None:
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            raise RejectedValueError(
                f"the {flavour} has two columns named {name!r}: Arrow from pandas needs unique "
                "column names. Rename one. Nothing was stored."
            )
        seen.add(name)


def _check_pandas_index(index: Any, flavour: str) -> None:
    for level in range(index.nlevels):
        values = index.get_level_values(level)
        name = values.name if values.name is not None else level
        _check_pandas_column(values, f"index level {name!r} of the {flavour}")


def _check_pandas_column(column: Any, what: str) -> None:
    if column.dtype != object:
        return
    from pandas.api.types import infer_dtype

    verdict = infer_dtype(column, skipna=True)
    if verdict in _SEVERAL_TYPES or (verdict == "mixed" and len(_types(column)) > 1):
        names = ", ".join(sorted(t.__name__ for t in _types(column)))
        raise RejectedValueError(
            f"{what} holds values of several types ({names}): Arrow keeps one type per column, so "
            "it would convert some of them or fail. Give the column one type (e.g. "
            ".astype(str)). Nothing was stored."
        )


def _types(column: Any) -> set[type]:
    """The Python types of a column's values, nulls left out."""
    return {type(v) for v in column if not _is_null(v)}


def _is_null(value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return True
    import pandas as pd

    return value is pd.NA or value is pd.NaT


def _check_polars_dtype(dtype: Any, what: str) -> None:
    import polars as pl

    if dtype == pl.Object:
        raise RejectedValueError(
            f"{what} has the polars Object dtype (arbitrary Python objects): Arrow cannot store "
            "them, it would keep their memory addresses. Convert the column to a polars type. "
            "Nothing was stored."
        )
