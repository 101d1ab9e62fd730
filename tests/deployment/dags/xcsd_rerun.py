"""Cleared and re-run from the CLI: the second run must replace, not add to, the first's objects.

`produce` pushes `extra` only on its first try, and its return value depends on the try, so
after `airflow tasks clear` the store must hold the new return value and no `extra`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task


@dag(dag_id="xcsd_rerun", schedule=None, catchup=False, default_args={"priority_weight": 100})
def xcsd_rerun() -> None:
    @task
    def produce(**context: Any) -> Any:
        ti = context["ti"]
        if ti.try_number == 1:
            ti.xcom_push(key="extra", value="e" * 5000)
        return {"generation": ti.try_number, "rows": [ti.try_number] * 1000}

    @task
    def consume(value: dict[str, Any]) -> Any:
        assert value["rows"] == [value["generation"]] * 1000, "the value came back damaged"
        return {"generation": value["generation"]}

    consume(produce())


the_dag = xcsd_rerun()
