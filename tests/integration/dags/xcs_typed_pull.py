"""Reads that say what they want, from a task (test_typed_pull.py): `xcomstore.pull` with
`columns` and `to` on a pandas frame, a polars frame, a mapped task's frames and an array, and
the refusals (a missing column, columns of a dict). Each reader returns what it received,
described in JSON (type, columns, rows; a refusal as its error's class and message), each
under its own key."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

ROWS = 2000  # 20 columns of float64: 320 kB, offloaded
COLUMNS = [f"c{i}" for i in range(20)]


def described(value: Any) -> dict[str, Any]:
    kind = f"{type(value).__module__.partition('.')[0]}.{type(value).__name__}"
    if hasattr(value, "column_names"):  # pyarrow.Table
        return {"type": kind, "columns": list(value.column_names), "rows": value.num_rows}
    if hasattr(value, "columns"):  # pandas or polars
        return {"type": kind, "columns": [str(c) for c in value.columns], "rows": len(value)}
    return {"type": kind, "shape": list(getattr(value, "shape", ()))}


def refused(read: Any) -> dict[str, str]:
    try:
        read()
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": "none"}


@dag(dag_id="xcs_typed_pull", schedule=None, catchup=False)
def xcs_typed_pull() -> None:
    @task
    def pandas_frame() -> Any:
        import numpy as np
        import pandas as pd

        return pd.DataFrame({c: np.arange(ROWS, dtype="float64") + i for i, c in enumerate(COLUMNS)})

    @task
    def polars_frame() -> Any:
        import polars as pl

        return pl.DataFrame({c: [float(i)] * ROWS for i, c in enumerate(COLUMNS)})

    @task
    def shard(index: int) -> Any:
        import pyarrow as pa

        return pa.table({c: [float(index)] * ROWS for c in COLUMNS})

    @task
    def array() -> Any:
        import numpy as np

        return np.ones((200, 300))

    @task
    def mapping() -> dict[str, Any]:
        return {"c1": list(range(ROWS))}

    @task
    def read(**context: Any) -> None:
        import xcomstore

        def pull(task_id: str, **options: Any) -> Any:
            return xcomstore.pull(task_id, **options)

        got = {
            "pandas_as_polars": described(pull("pandas_frame", columns=["c2", "c7"], to="polars")),
            "pandas_as_arrow": described(pull("pandas_frame", to="arrow")),
            "polars_as_pandas": described(pull("polars_frame", columns=["c0"], to="pandas")),
            "polars_columns": described(pull("polars_frame", columns=["c19", "c3"])),
            "shards": [described(t) for t in pull("shard", columns=["c5"], to="polars")],
            "array": described(pull("array", to="numpy")),
            "missing": refused(lambda: pull("pandas_frame", columns=["c2", "nope"])),
            "dict_columns": refused(lambda: pull("mapping", columns=["c1"])),
            "array_as_pandas": refused(lambda: pull("array", to="pandas")),
        }
        for key, result in got.items():  # one small XCom each: inline, readable by the test
            context["ti"].xcom_push(key=key, value=result)

    [pandas_frame(), polars_frame(), shard.expand(index=[0, 1, 2]), array(), mapping()] >> read()


the_dag = xcs_typed_pull()
