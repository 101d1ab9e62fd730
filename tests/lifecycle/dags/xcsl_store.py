"""A producer of a table, an array and a long string, and a reader of all three.

Used by tests/lifecycle (orphans after `airflow dags delete` / `db clean`, the store read without
the metadata DB) and tests/faults (rejected values, missing keys, damaged objects in a real run).
The array is pushed first: a policy that rejects arrays fails the task before anything is stored.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

ROWS = 2000


@dag(dag_id="xcsl_store", schedule=None, catchup=False)
def xcsl_store() -> None:
    @task
    def produce(**context: Any) -> Any:
        import numpy as np
        import pandas as pd

        context["ti"].xcom_push(key="array", value=np.arange(ROWS, dtype="float64").reshape(40, 50))
        context["ti"].xcom_push(key="extra", value="e" * 5000)
        return pd.DataFrame({"row": range(ROWS), "half": [i / 2 for i in range(ROWS)]})

    @task
    def consume(frame: Any, **context: Any) -> Any:
        array = context["ti"].xcom_pull(task_ids="produce", key="array")
        extra = context["ti"].xcom_pull(task_ids="produce", key="extra")
        return {"rows": len(frame), "array_sum": float(array.sum()), "extra": len(extra)}

    consume(produce())


the_dag = xcsl_store()
