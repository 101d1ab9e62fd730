"""A branch: its skip decision (skipmixin_key) must stay in the DB where the scheduler reads it."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task


@dag(dag_id="xcs_branch", schedule=None, catchup=False)
def xcs_branch() -> None:
    @task.branch
    def choose() -> str:
        return "left"

    @task
    def left() -> str:
        return "went left"

    @task
    def right() -> str:
        return "went right"

    @task(trigger_rule="none_failed_min_one_success")
    def join() -> str:
        return "joined"

    @task
    def internal_key(**context: Any) -> None:
        # Airflow itself reads this key from the DB (depends_on_past): it must stay inline.
        context["ti"].xcom_push(key="past_depends_met", value={"met": True, "pad": "p" * 300})

    branches = choose()
    branches >> [left(), right()] >> join()
    internal_key()


the_dag = xcs_branch()
