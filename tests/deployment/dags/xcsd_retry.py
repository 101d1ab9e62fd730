"""A task that pushes XComs, fails on its first try and succeeds on the second.

Airflow deletes a try's XComs (through the backend's purge) when the next try starts: after
the retry only the second try's values may be in the DB and in the store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag, task


@dag(dag_id="xcsd_retry", schedule=None, catchup=False, default_args={"priority_weight": 100})
def xcsd_retry() -> None:
    @task(retries=1, retry_delay=dt.timedelta(seconds=1))
    def flaky(**context: Any) -> Any:
        ti = context["ti"]
        ti.xcom_push(key="attempt", value={"try": ti.try_number, "pad": "a" * 3000})
        if ti.try_number == 1:
            ti.xcom_push(key="first_try_only", value="f" * 3000)
            raise RuntimeError("failing the first try on purpose, after pushing two XComs")
        return {"try": ti.try_number, "pad": "r" * 3000}

    @task
    def check(result: dict[str, Any], **context: Any) -> str:
        pull = context["ti"].xcom_pull
        attempt = pull(task_ids="flaky", key="attempt")
        assert result["try"] == 2, result["try"]
        assert result["pad"] == "r" * 3000
        assert attempt == {"try": 2, "pad": "a" * 3000}, str(attempt)[:200]
        assert pull(task_ids="flaky", key="first_try_only") is None, "the first try's XCom survived"
        return "ok"

    check(flaky())


the_dag = xcsd_retry()
