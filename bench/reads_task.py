"""The bodies of the read benchmark's tasks (bench/reads_dag.py), run inside dag.test().

`read` times, best of the case's `repeat`, each read as a task would write it with the backend
in use: xcomstore's own calls where it has them (`xcomstore.pull(columns=..., to=...)`), and
for the other backends the only way they have, a full pull and then the selection or the
conversion. Only the read is timed; checking what came back is not.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import measured
from bench.projection import COLUMNS, WANTED, frame_of
from bench.taskside import CASE_DIR_ENV

FRAME_TASK = "frame"
SHARD_TASK = "shard"


@functools.cache
def case() -> dict[str, Any]:
    return dict(json.loads((Path(os.environ[CASE_DIR_ENV]) / "case.json").read_text()))


def indexes() -> list[int]:
    """The mapped task's map indexes (read when the DAG file is parsed)."""
    return list(range(int(case()["values"])))


def frame() -> Any:
    """The frame bench.projection reads, `rows` long."""
    return frame_of(int(case()["rows"]))


def shard(index: int) -> str:
    """One mapped value: a string of `value_bytes` (JSON, which every backend stores) that
    starts with its index, so the order it comes back in can be checked."""
    size = int(case()["value_bytes"])
    return f"{index:08d}" + os.urandom(size // 2).hex()[: size - 8]


def read(ti: Any) -> None:
    spec = case()
    ours = spec["backend"] == "xcomstore"
    reads = _reads(ti, ours, int(spec["values"]))
    results = {name: _timed(int(spec["repeat"]), *read) for name, read in reads.items()}
    if ours:  # the same fan-in with the pool off: what the concurrency buys inside Airflow
        os.environ["AIRFLOW__XCOMSTORE__MAX_CONCURRENCY"] = "1"
        results["fan-in, one at a time"] = _timed(int(spec["repeat"]), *reads["fan-in"])
    (Path(os.environ[CASE_DIR_ENV]) / "reads.json").write_text(json.dumps(results, indent=1))


Read = tuple[Callable[[], Any], Callable[[Any], None]]  # the read, and the check of its value


def _reads(ti: Any, ours: bool, values: int) -> dict[str, Read]:
    import xcomstore

    def full() -> Any:
        return ti.xcom_pull(task_ids=FRAME_TASK)

    def columns() -> Any:
        return xcomstore.pull(FRAME_TASK, columns=WANTED) if ours else full()[WANTED]

    def as_polars() -> Any:
        import polars as pl

        return xcomstore.pull(FRAME_TASK, to="polars") if ours else pl.from_pandas(full())

    def fan_in() -> Any:
        return ti.xcom_pull(task_ids=SHARD_TASK)

    return {
        "full frame": (full, lambda v: _columns_are(v, [f"c{i}" for i in range(COLUMNS)])),
        "2 of 20 columns": (columns, lambda v: _columns_are(v, WANTED)),
        "as polars": (as_polars, _is_polars),
        "fan-in": (fan_in, lambda v: _in_order(v, values)),
    }


def _timed(repeat: int, reading: Callable[[], Any], check: Callable[[Any], None]) -> dict[str, Any]:
    """The best of `repeat` reads: seconds and peak RSS growth; or the error the read raised."""
    best: dict[str, Any] = {}
    for _ in range(repeat):
        try:
            with measured() as m:
                value = reading()
            check(value)
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"[:300]}
        del value
        if not best or m.seconds < best["seconds"]:
            best = {"seconds": m.seconds, "rss_growth": m.peak_growth}
    return best


def _columns_are(value: Any, names: list[str]) -> None:
    if list(value.columns) != names:
        raise AssertionError(f"columns {list(value.columns)}, expected {names}")


def _is_polars(value: Any) -> None:
    if type(value).__module__.split(".")[0] != "polars":
        raise AssertionError(f"a {type(value).__module__}.{type(value).__name__}, not a polars frame")


def _in_order(value: Any, count: int) -> None:
    got = [int(item[:8]) for item in value]
    if got != list(range(count)):
        raise AssertionError(f"{len(got)} values, not map indexes 0..{count - 1} in order")
