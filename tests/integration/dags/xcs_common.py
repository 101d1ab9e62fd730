"""Shared by the test DAGs and the runner: the values pushed, how to compare them, reports.

Values are built deterministically by name, so the producing task, the checking task and the
runner (for the default-backend form) all construct the same object independently: nothing
but the XCom itself travels from producer to checker.

Reports: checking tasks write their verdicts to $XCS_REPORT_DIR, a side channel the test
reads without going through XCom (which is what is under test).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROWS = 2000  # big enough that every table, array and big JSON value is far above the threshold


def import_data_libraries() -> None:
    """Import the heavy libraries once up front (the runner calls it while warming up)."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import polars  # noqa: F401
    import pyarrow  # noqa: F401


def threshold() -> int:
    """The configured threshold in bytes, as the tests set it (a plain integer)."""
    return int(os.environ["AIRFLOW__XCOMSTORE__THRESHOLD"])


# -- the values ------------------------------------------------------------------------------
def _pandas() -> Any:
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "i": np.arange(ROWS, dtype="int64"),
            "f": np.linspace(0.0, 1.0, ROWS),
            "s": [f"row {i}" for i in range(ROWS)],
            "when": pd.date_range("2026-01-01", periods=ROWS, freq="min", tz="UTC"),
            "ok": np.arange(ROWS) % 2 == 0,
        }
    )


def _pandas_indexed() -> Any:
    import pandas as pd

    frame = pd.DataFrame({"v": range(ROWS)}, index=pd.Index([f"k{i}" for i in range(ROWS)], name="key"))
    return frame


def _polars() -> Any:
    import polars as pl

    return pl.DataFrame(
        {
            "i": list(range(ROWS)),
            "f": [i / 7 for i in range(ROWS)],
            "s": [f"row {i}" for i in range(ROWS)],
            "maybe": [None if i % 5 == 0 else i for i in range(ROWS)],
        }
    )


def _arrow() -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "i": pa.array(range(ROWS), type=pa.int32()),
            "s": pa.array([f"row {i}" for i in range(ROWS)]),
            "l": pa.array([[i, i + 1] for i in range(ROWS)]),
        }
    )


def _numpy(kind: str) -> Any:
    import numpy as np

    arrays: dict[str, Callable[[], Any]] = {
        "float64_1d": lambda: np.linspace(-1.0, 1.0, 5 * ROWS),
        "int32_2d": lambda: np.arange(3 * ROWS, dtype=np.int32).reshape(60, -1),
        "bool": lambda: np.arange(3 * ROWS) % 3 == 0,
        "datetime64": lambda: np.arange("2020-01-01", "2026-01-01", dtype="datetime64[D]"),
        "complex": lambda: np.arange(ROWS) * (1 + 2j),
        "fortran": lambda: np.asfortranarray(np.arange(3 * ROWS, dtype=np.float32).reshape(30, -1)),
        "zero_d": lambda: np.array(3.5),
        "uint8_3d": lambda: (np.arange(4 * ROWS) % 256).astype(np.uint8).reshape(20, -1, 4),
    }
    return arrays[kind]()


def _big_json() -> Any:
    return {
        "users": [
            {"id": i, "name": f"user {i}", "tags": ["a", "b", str(i % 7)], "score": {"x": i * 1.5}}
            for i in range(ROWS // 4)
        ],
        "nested": {"deep": {"deeper": {"deepest": list(range(100))}}},
        "unicode": "zürich – 東京 – 😀",
    }


def _serde_has_uuid() -> bool:
    """Airflow 3.1's serde has no UUID serializer (3.2 added it): no backend can push one there."""
    from importlib.metadata import version

    return tuple(int(p) for p in version("apache-airflow-core").split(".")[:2]) >= (3, 2)


def _big_mixed() -> Any:
    """Serde-only types nested inside a value big enough to be offloaded."""
    return {
        "pair": (1, "two", 3.0),
        "ids": set(range(200)),
        "frozen": frozenset({"a", "b"}),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 1, 2),
        "span": dt.timedelta(hours=5, seconds=3),
        "money": decimal.Decimal("12.345"),
        **({"id": uuid.UUID("12345678-1234-5678-1234-567812345678")} if _serde_has_uuid() else {}),
        "pad": "x" * 3000,
    }


VALUES: dict[str, Callable[[], Any]] = {
    "pandas_df": _pandas,
    "pandas_df_indexed": _pandas_indexed,
    "polars_df": _polars,
    "arrow_table": _arrow,
    **{
        f"np_{k}": (lambda k=k: _numpy(k))
        for k in ("float64_1d", "int32_2d", "bool", "datetime64", "complex", "fortran", "zero_d", "uint8_3d")
    },
    "bytes_big": lambda: bytes(range(256)) * 100,
    "bytes_small": lambda: b"\x00\x01 small",
    "json_big": _big_json,
    "mixed_big": _big_mixed,
    "tuple_big": lambda: tuple(range(1000)),
    # Small values: these must stay inline, stored exactly as the default backend does.
    "small_int": lambda: 42,
    "small_float": lambda: 1.5,
    "small_str": lambda: "hello",
    "small_bool": lambda: True,
    "small_dict": lambda: {"a": 1, "b": [1, 2], "c": {"d": None}},
    "small_list": lambda: [1, "two", 3.0],
    "small_tuple": lambda: (1, 2),
    "small_set": lambda: {1, 2, 3},
    "small_datetime": lambda: dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    # Shaped like a reference but pushed by the user: must come back as the same dict.
    "lookalike_dict": lambda: {"uri": "file:///etc/passwd", "codec": "json", "summary": "x"},
    "tagged_lookalike": lambda: {"__xcomstore__": 1, "uri": "file:///etc/passwd"},
}
SMALL = [name for name in VALUES if name.startswith("small_")]


BIG_BYTES = 100 * 2**20


def big_text() -> str:
    """$XCS_BIG_BYTES (default 100 MiB) of text: a 64 KiB pseudo-random block, numbered, repeated.

    JSON-serializable, so Airflow's default backend can try to store it too.
    """
    import hashlib

    size = int(os.environ.get("XCS_BIG_BYTES", BIG_BYTES))
    block = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(1024))  # 64 KiB
    count = size // len(block) + 1
    return "".join(f"{i:08d}{block[8:]}" for i in range(count))[:size]


def boundary_values() -> dict[str, Any]:
    """A string whose JSON form ('"' + text + '"') is exactly the threshold, and one byte more."""
    limit = threshold()
    if limit < 3:
        return {}
    return {"at_threshold": "a" * (limit - 2), "above_threshold": "a" * (limit - 1)}


def make_value(name: str) -> Any:
    if name in VALUES:
        return VALUES[name]()
    return boundary_values()[name]


def all_names() -> list[str]:
    return [*VALUES, *boundary_values()]


# -- comparing -------------------------------------------------------------------------------
def difference(expected: Any, got: Any) -> str | None:
    """None if `got` equals `expected` with the same type (deeply), else what differs."""
    if type(got) is not type(expected):
        return f"type {type(got).__module__}.{type(got).__qualname__}, expected {type(expected).__qualname__}"
    checker = _CHECKERS.get(type(expected).__module__.split(".")[0])
    if checker is not None:
        return checker(expected, got)
    if isinstance(expected, dict):
        if set(expected) != set(got):
            return f"keys {sorted(map(str, got))} != {sorted(map(str, expected))}"
        return _first_diff((f"[{k!r}]", expected[k], got[k]) for k in expected)
    if isinstance(expected, (list, tuple)):
        if len(expected) != len(got):
            return f"length {len(got)} != {len(expected)}"
        return _first_diff((f"[{i}]", e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)))
    return None if expected == got else f"{_short(got)} != {_short(expected)}"


def _first_diff(items: Any) -> str | None:
    for where, expected, got in items:
        found = difference(expected, got)
        if found:
            return f"{where}: {found}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _numpy_diff(expected: Any, got: Any) -> str | None:
    import numpy as np

    if got.dtype != expected.dtype or got.shape != expected.shape:
        return f"dtype/shape {got.dtype}{got.shape} != {expected.dtype}{expected.shape}"
    return None if np.array_equal(got, expected) else "values differ"


def _pandas_diff(expected: Any, got: Any) -> str | None:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(got, expected)
    except AssertionError as exc:
        return " ".join(str(exc).split())[:300]
    return None


def _polars_diff(expected: Any, got: Any) -> str | None:
    if got.schema != expected.schema:
        return f"schema {got.schema} != {expected.schema}"
    return None if got.equals(expected) else "values differ"


def _arrow_diff(expected: Any, got: Any) -> str | None:
    if not got.schema.equals(expected.schema):
        return f"schema {got.schema} != {expected.schema}"
    return None if got.equals(expected) else "values differ"


_CHECKERS: dict[str, Callable[[Any, Any], str | None]] = {
    "numpy": _numpy_diff,
    "pandas": _pandas_diff,
    "polars": _polars_diff,
    "pyarrow": _arrow_diff,
}


# -- reports ---------------------------------------------------------------------------------
def _report_file(run_id: str, task_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return Path(os.environ["XCS_REPORT_DIR"]) / safe / f"{task_id}.json"


def write_report(context: dict[str, Any], report: dict[str, Any]) -> None:
    ti = context["ti"]
    name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}.{ti.map_index}"
    path = _report_file(ti.run_id, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, default=repr))


def read_reports(run_id: str) -> dict[str, Any]:
    folder = _report_file(run_id, "x").parent
    if not folder.exists():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def check(context: dict[str, Any], expected: dict[str, Any], got: dict[str, Any]) -> None:
    """Report each name's verdict ('ok' or the difference); fail the task if any differs."""
    verdicts = {name: difference(expected[name], got[name]) or "ok" for name in expected}
    write_report(context, verdicts)
    bad = {name: verdict for name, verdict in verdicts.items() if verdict != "ok"}
    if bad:
        raise AssertionError(f"values differ after the round trip: {bad}")
