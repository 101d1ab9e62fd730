"""The benchmark DAG: `push` stores one value as an XCom, `pull` reads it back in the next task.

Copied into each case's DAGS_FOLDER; the task bodies live in bench.taskside.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from bench import taskside

DAG_ID = "xcom_bench"


@dag(dag_id=DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def xcom_bench() -> None:
    @task(task_id=taskside.PUSH_TASK)
    def push(**context: Any) -> None:
        taskside.push(context["ti"])

    @task(task_id="pull")
    def pull(**context: Any) -> None:
        taskside.pull(context["ti"])

    push() >> pull()


bench_dag = xcom_bench()
