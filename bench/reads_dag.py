"""The read benchmark's DAG: a 20-column frame and a mapped task's values, then one task that
reads them the ways bench/reads.py compares (bench.reads_task holds the bodies).

Copied into each backend's DAGS_FOLDER; the sizes come from the case file bench/reads.py writes.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from bench import reads_task

DAG_ID = "xcom_reads"


@dag(dag_id=DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def xcom_reads() -> None:
    @task(task_id=reads_task.FRAME_TASK)
    def frame() -> Any:
        return reads_task.frame()

    @task(task_id=reads_task.SHARD_TASK)
    def shard(index: int) -> str:
        return reads_task.shard(index)

    @task(task_id="read")
    def read(**context: Any) -> None:
        reads_task.read(context["ti"])

    [frame(), shard.expand(index=reads_task.indexes())] >> read()


reads_dag = xcom_reads()
