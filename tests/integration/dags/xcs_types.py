"""Pushes every kind of value through XCom and checks, inside Airflow, what comes back.

One producer pushes each named value of xcs_common; one checker pulls them all and reports a
verdict per name. Mapped tasks and multiple_outputs get their own producer/checker pairs.
"""

from __future__ import annotations

from typing import Any

import xcs_common
from airflow.sdk import dag, task

MAPPED_ROWS = [1000, 1500, 2000]


def frame_of(rows: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"row": range(rows), "label": [f"r{i}" for i in range(rows)]})


@dag(dag_id="xcs_types", schedule=None, catchup=False)
def xcs_types() -> None:
    @task
    def push_values(**context: Any) -> None:
        for name in xcs_common.all_names():
            context["ti"].xcom_push(key=name, value=xcs_common.make_value(name))

    @task
    def check_values(**context: Any) -> None:
        names = xcs_common.all_names()
        pull = context["ti"].xcom_pull
        got = {name: pull(task_ids="push_values", key=name) for name in names}
        xcs_common.check(context, {n: xcs_common.make_value(n) for n in names}, got)

    @task
    def make_frame(rows: int) -> Any:
        return frame_of(rows)

    @task
    def frame_rows(frame: Any) -> int:
        # A mapped downstream reads its own upstream map index (the item endpoint).
        return len(frame)

    @task
    def check_frames(frames: Any, counts: Any, **context: Any) -> None:
        # An unmapped downstream reads all map indexes at once (the lazy sequence).
        expected = {f"frame_{i}": frame_of(rows) for i, rows in enumerate(MAPPED_ROWS)}
        got = {f"frame_{i}": frame for i, frame in enumerate(frames)}
        expected["counts"], got["counts"] = MAPPED_ROWS, list(counts)
        xcs_common.check(context, expected, got)

    @task(multiple_outputs=True)
    def split() -> dict[str, Any]:
        return {"frame": xcs_common.make_value("pandas_df"), "meta": {"rows": xcs_common.ROWS}}

    @task
    def check_split(frame: Any, meta: Any, whole: Any, **context: Any) -> None:
        expected = {
            "frame": xcs_common.make_value("pandas_df"),
            "meta": {"rows": xcs_common.ROWS},
        }
        got = {"frame": frame, "meta": meta}
        xcs_common.check(context, {**expected, "whole": expected}, {**got, "whole": whole})

    push_values() >> check_values()
    frames = make_frame.expand(rows=MAPPED_ROWS)
    check_frames(frames, frame_rows.expand(frame=frames))
    parts = split()
    check_split(parts["frame"], parts["meta"], parts)


the_dag = xcs_types()
