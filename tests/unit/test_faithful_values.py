"""A table comes back as it was pushed, or the push is refused naming the column: Arrow never
gets to store something else in its place (memory addresses, converted types, a name's text)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from xcomstore.codecs.arrow import ArrowCodec
from xcomstore.core.store import XComStore
from xcomstore.errors import RejectedValueError
from xcomstore.identity import Origin

MakeStore = Callable[..., XComStore]
CODEC = ArrowCodec()


class Opaque:
    """A Python object Arrow knows nothing about."""


def _round_trip(value: Any) -> Any:
    described = CODEC.describe(value)
    sink = io.BytesIO()
    CODEC.encode(value, sink, "none")
    sink.seek(0)
    return CODEC.decode(sink, described.meta)


def _polars_objects() -> pl.DataFrame:
    return pl.DataFrame({"n": [1, 2], "o": [Opaque(), Opaque()]}, schema={"n": pl.Int64, "o": pl.Object})


UNFAITHFUL: dict[str, tuple[Callable[[], Any], str]] = {
    "polars-object-column": (_polars_objects, r"column 'o' .*polars Object dtype"),
    "polars-object-series": (lambda: _polars_objects()["o"], r"polars.Series 'o' .*Object dtype"),
    "pandas-int-and-str": (
        lambda: pd.DataFrame({"ok": [1, 2], "c": pd.Series([1, "a"], dtype=object)}),
        r"column 'c' .*several types \(int, str\)",
    ),
    "pandas-int-and-float": (
        lambda: pd.DataFrame({"c": pd.Series([1, 2.5], dtype=object)}),
        r"column 'c' .*several types \(float, int\)",
    ),
    "pandas-str-and-bytes": (
        lambda: pd.DataFrame({"c": pd.Series(["a", b"b", None], dtype=object)}),
        r"column 'c' .*several types \(bytes, str\)",
    ),
    "pandas-series-mixed": (lambda: pd.Series([True, 1], dtype=object), r"pandas.Series holds .*several"),
    "pandas-index-mixed": (
        lambda: pd.DataFrame({"c": [1, 2]}, index=pd.Index([1, "a"], dtype=object, name="when")),
        r"index level 'when' .*several types",
    ),
    "pandas-duplicate-columns": (
        lambda: pd.DataFrame([[1, 2]], columns=["a", "a"]),
        r"two columns named 'a'",
    ),
    "pandas-series-named-by-a-datetime": (
        lambda: pd.Series([1, 2], name=datetime(2026, 1, 1)),
        r"pandas.Series is named .*datetime",
    ),
}


@pytest.mark.parametrize("case", list(UNFAITHFUL))
def test_what_arrow_would_store_wrong_is_refused_naming_the_column(case: str) -> None:
    make, says = UNFAITHFUL[case]
    with pytest.raises(RejectedValueError, match=says):
        _round_trip(make())


@pytest.mark.parametrize("case", list(UNFAITHFUL))
@pytest.mark.parametrize("threshold", ["0", "1000000"], ids=["offloaded", "inline"])
def test_a_push_refuses_it_and_stores_nothing(
    case: str, threshold: str, make_xcom_store: MakeStore, origin: Origin
) -> None:
    store = make_xcom_store(threshold=threshold)
    with pytest.raises(RejectedValueError, match=UNFAITHFUL[case][1]):
        store.push(UNFAITHFUL[case][0](), origin)
    assert list(store.list()) == []


def test_a_raw_arrow_error_becomes_a_rejection_naming_the_column() -> None:
    frame = pd.DataFrame({"ok": [1], "c": pd.Series([Opaque()], dtype=object)})
    with pytest.raises(
        RejectedValueError, match=r"pandas.DataFrame \(column 'c'\) cannot be stored as Arrow"
    ):
        _round_trip(frame)


@pytest.mark.parametrize("name", [("a", "b"), ("a", ("b", 1)), ("x", None, 2.5), "plain", 7, None])
def test_a_series_name_round_trips(name: Any, make_xcom_store: MakeStore, origin: Origin) -> None:
    series = pd.Series([1, 2, 3], name=name)
    assert _round_trip(series).name == name
    store = make_xcom_store(threshold="0")
    back = store.pull(store.push(series, origin))
    assert back.name == name
    assert back.equals(series)


def test_what_arrow_stores_faithfully_still_round_trips() -> None:
    lists = pd.DataFrame({"l": pd.Series([[1, 2], [3]], dtype=object), "s": ["a", None]})
    back = _round_trip(lists)
    assert [list(v) for v in back["l"]] == [[1, 2], [3]]
    assert back["s"].tolist()[0] == "a"
    table = pa.table([pa.array([1]), pa.array(["x"])], names=["a", "a"])  # Arrow keeps both names
    assert _round_trip(table).equals(table)
    frame = pl.DataFrame({"n": [1, 2], "s": ["a", "b"]})
    assert _round_trip(frame).equals(frame)
