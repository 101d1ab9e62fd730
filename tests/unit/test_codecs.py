"""codecs: each value type comes back with its exact type and equal, through every compression."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import polars.testing
import pyarrow as pa
import pytest

from xcomstore.codecs import ArrowCodec, BytesCodec, Codec, CodecRegistry, JsonCodec, NumpyCodec
from xcomstore.errors import ObjectFormatError, RejectedValueError

REGISTRY = CodecRegistry(JsonCodec())


def round_trip(codec: Codec, value: Any, compression: str) -> Any:
    """Encode then decode `value` the way the object format does: meta from describe()."""
    sink = io.BytesIO()
    codec.encode(value, sink, compression)
    sink.seek(0)
    return codec.decode(sink, codec.describe(value).meta)


def compressions(codec: Codec) -> list[str]:
    return ["none", *sorted(codec.native_compression)]


# -- tables ----------------------------------------------------------------------------------
def pandas_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": ["a", None, "ç€"],
            "category": pd.Categorical(["x", "y", "x"], categories=["y", "x"], ordered=True),
            "when": pd.date_range("2024-03-30", periods=3, freq="h", tz="Europe/Paris"),
            "when_ns": pd.DatetimeIndex(
                [pd.Timestamp("2024-01-01 00:00:00.000000001"), pd.NaT, pd.Timestamp("1970-01-01")]
            ).as_unit("ns"),
            "count": pd.array([1, None, 3], dtype="Int64"),
            "ratio": [0.5, np.nan, -1.0],
            "flag": [True, False, True],
        },
        index=pd.Index(["r1", "r2", "r3"], name="row"),
    )


TABLES: dict[str, tuple[Callable[[], Any], Callable[[Any, Any], None]]] = {
    "pandas-frame": (pandas_frame, lambda a, b: pd.testing.assert_frame_equal(a, b, check_exact=True)),
    "pandas-frame-range-index": (
        lambda: pd.DataFrame({"a": np.arange(5), "b": list("abcde")}),
        lambda a, b: pd.testing.assert_frame_equal(a, b, check_exact=True),
    ),
    "pandas-frame-empty": (
        lambda: pd.DataFrame({"a": pd.Series([], dtype="float32")}),
        lambda a, b: pd.testing.assert_frame_equal(a, b),
    ),
    "pandas-series-named": (
        lambda: pd.Series([1.5, 2.5, None], name="price", index=[10, 20, 30]),
        lambda a, b: pd.testing.assert_series_equal(a, b, check_exact=True),
    ),
    "pandas-series-unnamed": (
        lambda: pd.Series(["a", "b"]),
        lambda a, b: pd.testing.assert_series_equal(a, b, check_exact=True),
    ),
    "pandas-series-int-name": (
        lambda: pd.Series(pd.array([1, None], dtype="Int64"), name=0),
        lambda a, b: pd.testing.assert_series_equal(a, b, check_exact=True),
    ),
    "pandas-series-named-values": (
        lambda: pd.Series([1, 2], name="values"),
        lambda a, b: pd.testing.assert_series_equal(a, b, check_exact=True),
    ),
    "polars-frame": (
        lambda: pl.DataFrame(
            {
                "a": [1, None, 3],
                "s": ["x", "y", None],
                "t": pl.Series([0, 1, 2]).cast(pl.Datetime("us", "UTC")),
                "c": pl.Series(["p", "q", "p"]).cast(pl.Categorical),
                "l": [[1, 2], [], None],
            }
        ),
        polars.testing.assert_frame_equal,
    ),
    "polars-series-named": (
        lambda: pl.Series("nm", [1, 2, 3], dtype=pl.Int16),
        polars.testing.assert_series_equal,
    ),
    "polars-series-unnamed": (lambda: pl.Series([1.0, None]), polars.testing.assert_series_equal),
    "pyarrow-table": (
        lambda: pa.table({"a": pa.array([1, None], pa.int32()), "b": ["x", "y"], "c": [[1], [2, 3]]}),
        lambda a, b: a.equals(b, check_metadata=True) or pytest.fail(f"{a} != {b}"),
    ),
}


@pytest.mark.parametrize("compression", compressions(ArrowCodec()))
@pytest.mark.parametrize("kind", TABLES)
def test_table_round_trip(kind: str, compression: str) -> None:
    make, assert_equal = TABLES[kind]
    value = make()
    codec = REGISTRY.binary_for(value)
    assert isinstance(codec, ArrowCodec)
    back = round_trip(codec, value, compression)
    assert type(back) is type(value)
    assert_equal(back, value)


@pytest.mark.parametrize("kind", TABLES)
def test_table_description(kind: str) -> None:
    value = TABLES[kind][0]()
    described = ArrowCodec().describe(value)
    assert described.type_name == described.meta["flavour"]
    assert described.type_name.split(".")[0] in ("pandas", "polars", "pyarrow")
    assert ArrowCodec().size_hint(value) >= 0


def test_table_summary() -> None:
    assert ArrowCodec().describe(pandas_frame()).summary == "DataFrame 3×7"
    assert ArrowCodec().describe(pa.table({"a": [1, 2]})).summary == "Table 2×1"
    assert ArrowCodec().describe(pl.Series("x", [1, 2])).summary == "Series Int64 2"


def test_native_compression_makes_tables_smaller() -> None:
    frame = pd.DataFrame({"a": np.zeros(100_000), "b": ["same"] * 100_000})
    sizes = {}
    for compression in compressions(ArrowCodec()):
        sink = io.BytesIO()
        ArrowCodec().encode(frame, sink, compression)
        sizes[compression] = len(sink.getvalue())
    assert sizes["zstd"] < sizes["none"] // 10
    assert sizes["lz4"] < sizes["none"] // 2


def many_batch_frame(rows: int = 5000) -> pd.DataFrame:
    """Numeric columns that gain nulls late (after several batches), and other types."""
    ints = pd.array(np.arange(rows), dtype="Int64")
    ints[rows - 3] = None
    floats = np.linspace(-1, 1, rows)
    floats[rows // 2] = np.nan
    return pd.DataFrame(
        {
            "i64": np.arange(rows, dtype=np.int64),
            "u8": (np.arange(rows) % 256).astype(np.uint8),
            "f32": np.arange(rows, dtype=np.float32) / 3,
            "late_null_int": ints,
            "nan_float": floats,
            "late_null_float": pd.array([*np.arange(rows - 1) / 7, None], dtype="Float64"),
            "text": [f"t{i}" if i % 11 else None for i in range(rows)],
            "when": pd.date_range("2020-01-01", periods=rows, freq="s", tz="UTC"),
        },
        index=pd.RangeIndex(10, 10 + 2 * rows, 2, name="idx"),
    )


@pytest.mark.parametrize("compression", compressions(ArrowCodec()))
@pytest.mark.parametrize("flavour", ["pandas", "polars"])
def test_tables_in_many_batches_come_back_whole(
    monkeypatch: pytest.MonkeyPatch, flavour: str, compression: str
) -> None:
    monkeypatch.setattr("xcomstore.codecs.arrow._BATCH_BYTES", 4096)  # 1024-row batches
    frame = many_batch_frame()
    value = frame if flavour == "pandas" else pl.from_pandas(frame, include_index=True)
    sink = io.BytesIO()
    ArrowCodec().encode(value, sink, compression)
    assert pa.ipc.open_stream(io.BytesIO(sink.getvalue())).read_all().column(0).num_chunks > 3
    back = ArrowCodec().decode(io.BytesIO(sink.getvalue()), ArrowCodec().describe(value).meta)
    if flavour == "pandas":
        pd.testing.assert_frame_equal(back, frame, check_exact=True)
        assert back["i64"].to_numpy().flags.c_contiguous
    else:
        polars.testing.assert_frame_equal(back, value)


@pytest.mark.parametrize("declared", [4999, 5001])
def test_table_with_other_row_count_than_declared_is_refused(declared: int) -> None:
    frame = many_batch_frame()
    sink = io.BytesIO()
    ArrowCodec().encode(frame, sink, "none")
    meta = {**ArrowCodec().describe(frame).meta, "rows": declared}
    with pytest.raises(ObjectFormatError, match=f"declares {declared}"):
        ArrowCodec().decode(io.BytesIO(sink.getvalue()), meta)


# -- numpy -----------------------------------------------------------------------------------
ARRAYS = {
    "float64": np.array([1.5, np.nan, -np.inf, 0.0]),
    "float32": np.linspace(0, 1, 7, dtype=np.float32),
    "int8": np.array([-128, 0, 127], dtype=np.int8),
    "uint64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "bool": np.array([True, False]),
    "complex128": np.array([1 + 2j, -3.5j]),
    "datetime64-ns": np.array(["2024-01-01T00:00:00.000000001", "NaT"], dtype="datetime64[ns]"),
    "timedelta64": np.array([1, -2, 3], dtype="timedelta64[s]"),
    "str-U5": np.array(["ab", "cdefg", ""], dtype="<U5"),
    "bytes-S3": np.array([b"abc", b"x", b""], dtype="S3"),
    "structured": np.array(
        [(1, 2.5, b"ab", (1, 2)), (-1, -0.0, b"", (3, 4))],
        dtype=[("i", "<i4"), ("f", ">f8"), ("s", "S2"), ("pair", "<u2", (2,))],
    ),
    "0-d": np.array(3.25),
    "0-d-int": np.array(7, dtype=np.int16),
    "empty": np.zeros((0,), dtype=np.float64),
    "empty-2d": np.zeros((3, 0), dtype=np.int32),
    "1-d": np.arange(1000, dtype=np.int64),
    "3-d": np.arange(60, dtype=np.float64).reshape(3, 4, 5),
    "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "slice-step": np.arange(100)[::7],
    "slice-2d": np.arange(48).reshape(6, 8)[1:5, ::3],
    "transposed": np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1),
    "big-endian": np.arange(5, dtype=">i4"),
}


@pytest.mark.parametrize("kind", ARRAYS)
def test_numpy_round_trip(kind: str) -> None:
    value = ARRAYS[kind]
    codec = REGISTRY.binary_for(value)
    assert isinstance(codec, NumpyCodec)
    for compression in compressions(codec):
        back = round_trip(codec, value, compression)
        assert type(back) is np.ndarray
        assert back.dtype == value.dtype
        assert back.shape == value.shape
        np.testing.assert_array_equal(back, value, strict=True)
        assert np.ascontiguousarray(back).tobytes() == np.ascontiguousarray(value).tobytes()


def test_numpy_fortran_order_kept() -> None:
    back = round_trip(NumpyCodec(), ARRAYS["fortran"], "none")
    assert back.flags.f_contiguous
    assert not back.flags.c_contiguous


def test_numpy_description() -> None:
    described = NumpyCodec().describe(ARRAYS["3-d"])
    assert described.type_name == "numpy.ndarray"
    assert described.summary == "ndarray float64 3×4×5"
    assert described.meta == {"dtype": "float64", "shape": [3, 4, 5]}
    assert NumpyCodec().describe(ARRAYS["0-d"]).summary == "ndarray float64 scalar"
    assert NumpyCodec().size_hint(ARRAYS["1-d"]) == 8000


@pytest.mark.parametrize(
    "value",
    [
        np.array([1, "a", None], dtype=object),
        np.array([(1, None)], dtype=[("a", "i4"), ("b", "O")]),
        np.empty((0,), dtype=object),
    ],
    ids=["object", "structured-with-object", "empty-object"],
)
def test_numpy_object_arrays_rejected_before_writing(value: np.ndarray) -> None:
    sink = io.BytesIO()
    with pytest.raises(RejectedValueError, match="pickle"):
        NumpyCodec().encode(value, sink, "none")
    assert sink.getvalue() == b""


@pytest.mark.parametrize(
    "value",
    [np.ma.masked_array([1, 2], mask=[False, True]), np.float64(1.5), np.int64(3), [np.arange(2)]],
    ids=["masked", "float-scalar", "int-scalar", "list-of-arrays"],
)
def test_numpy_only_takes_exact_ndarrays(value: Any) -> None:
    assert not NumpyCodec().accepts(value)
    assert REGISTRY.binary_for(value) is None


# -- bytes -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [b"", b"\x00\xff" * 1000, bytearray(b"mutable"), bytearray(), bytes(range(256))],
    ids=["empty", "binary", "bytearray", "empty-bytearray", "all-bytes"],
)
def test_bytes_round_trip(value: bytes | bytearray) -> None:
    codec = REGISTRY.binary_for(value)
    assert isinstance(codec, BytesCodec)
    for compression in compressions(codec):
        back = round_trip(codec, value, compression)
        assert type(back) is type(value)
        assert back == value


def test_bytes_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("xcomstore.codecs.raw._CHUNK", 7)
    value = bytes(range(100))
    writes: list[int] = []

    class Sink(io.BytesIO):
        def write(self, data: Any) -> int:
            writes.append(len(data))
            return super().write(data)

    sink = Sink()
    BytesCodec().encode(value, sink, "none")
    assert sink.getvalue() == value
    assert max(writes) == 7


def test_bytes_description() -> None:
    assert BytesCodec().describe(bytearray(3)).summary == "bytearray of 3 B"
    assert BytesCodec().size_hint(b"12345") == 5
    assert not BytesCodec().accepts(memoryview(b"x"))


# -- json ------------------------------------------------------------------------------------
JSON_VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    1.5,
    "",
    "ünï\n",
    [1, [2, None]],
    {"a": {"b": [1.0, "x"]}},
    {"": []},
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_json_round_trip(value: Any) -> None:
    codec = JsonCodec()
    assert REGISTRY.binary_for(value) is None
    jsonable, data = codec.dumps(value)
    assert jsonable == value
    back = round_trip(codec, data, "none")
    assert type(back) is type(value)
    assert back == value


def test_json_is_compact_utf8() -> None:
    assert JsonCodec().dumps({"a": [1, "é"]})[1] == '{"a":[1,"é"]}'.encode()


def test_json_uses_the_pluggable_steps() -> None:
    codec = JsonCodec(
        to_jsonable=lambda v: {"__tuple": list(v)} if isinstance(v, tuple) else v,
        from_jsonable=lambda v: tuple(v["__tuple"]) if isinstance(v, dict) and "__tuple" in v else v,
    )
    jsonable, data = codec.dumps((1, 2))
    assert jsonable == {"__tuple": [1, 2]}
    assert codec.decode(io.BytesIO(data), {}) == (1, 2)


class CountingSteps:
    """Pluggable to/from-JSON steps that count their calls and tag what they convert."""

    def __init__(self) -> None:
        self.calls = 0

    def to_jsonable(self, value: Any) -> Any:
        self.calls += 1
        return {"wrapped": repr(value)}

    def from_jsonable(self, value: Any) -> Any:
        self.calls += 1
        return ("unwrapped", value)


@pytest.mark.parametrize("value", JSON_VALUES)
def test_plain_json_skips_the_pluggable_steps(value: Any) -> None:
    steps = CountingSteps()
    codec = JsonCodec(steps.to_jsonable, steps.from_jsonable)
    jsonable, data = codec.dumps(value)
    assert jsonable == value
    assert codec.decode(io.BytesIO(data), {}) == value
    assert codec.from_json_form(value) == value
    assert steps.calls == 0


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        [1, (2,)],
        {"a": {1: "int key"}},
        {"a": [{"__classname__": "x"}]},
        {"__type": "dict", "__var": {}},
        [True, b"bytes"],
        {"s": {1, 2}},
    ],
)
def test_values_serde_must_see_go_through_the_pluggable_steps(value: Any) -> None:
    steps = CountingSteps()
    codec = JsonCodec(steps.to_jsonable, steps.from_jsonable)
    assert codec.dumps(value)[0] == {"wrapped": repr(value)}
    assert codec.from_json_form(value) == ("unwrapped", value)
    assert steps.calls == 2


def test_json_refuses_non_json_values() -> None:
    with pytest.raises(TypeError):
        JsonCodec().dumps({1, 2})


@pytest.mark.parametrize(
    ("value", "summary"),
    [
        ({"a": 1}, "dict of 1 key"),
        ({}, "dict of 0 keys"),
        ([1, 2], "list of 2 items"),
        ("abc", "str of 3 characters"),
        (1.5, "float"),
    ],
)
def test_json_summary(value: Any, summary: str) -> None:
    assert JsonCodec().describe(value).summary == summary


# -- registry --------------------------------------------------------------------------------
def test_registry_lookup() -> None:
    for name, kind in [
        ("arrow", ArrowCodec),
        ("numpy", NumpyCodec),
        ("bytes", BytesCodec),
        ("json", JsonCodec),
    ]:
        assert isinstance(REGISTRY.by_name(name), kind)
    with pytest.raises(ObjectFormatError, match="'pickle'"):
        REGISTRY.by_name("pickle")


def test_registry_with_custom_binary_codecs() -> None:
    registry = CodecRegistry(JsonCodec(), binary=[BytesCodec()])
    assert registry.binary_for(np.arange(3)) is None
    assert isinstance(registry.binary_for(b"x"), BytesCodec)
    with pytest.raises(ObjectFormatError):
        registry.by_name("numpy")


def test_configured_registry_without_user_codecs_is_the_built_in_one() -> None:
    registry = CodecRegistry.configured(JsonCodec(), plugins=())
    assert [type(c) for c in registry.binary] == [type(c) for c in REGISTRY.binary]
    assert [type(c) for c in registry.binary] == [ArrowCodec, NumpyCodec, BytesCodec]


def test_a_table_flavour_xcomstore_never_writes_is_the_objects_fault() -> None:
    """The flavour is the header's (meta): a rewritten one is an ObjectFormatError, not a
    TypeError escaping the read (found by the fuzzer, with the codec's name rewritten too)."""
    sink = io.BytesIO()
    table = pa.table({"a": [1, 2, 3]})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    sink.seek(0)
    with pytest.raises(ObjectFormatError, match="flavour"):
        ArrowCodec().decode(sink, {"flavour": "x", "rows": 3})
