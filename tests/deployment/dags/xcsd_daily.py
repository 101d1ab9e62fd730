"""A daily DAG for `airflow backfill create`; no scheduled runs of its own (it ended in January).

`extract` pushes `first_pass` only on its first try: a backfill that reprocesses the
completed runs must leave the second pass's objects only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import dag, task

START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@dag(
    dag_id="xcsd_daily",
    schedule="@daily",
    start_date=START,
    end_date=START + dt.timedelta(days=5),
    catchup=False,
    max_active_runs=3,
    default_args={"priority_weight": 100},
)
def xcsd_daily() -> None:
    @task
    def extract(**context: Any) -> Any:
        ti = context["ti"]
        day = context["logical_date"].date().isoformat()
        if ti.try_number == 1:
            ti.xcom_push(key="first_pass", value={"day": day, "pad": "p" * 3000})
        return {"day": day, "try": ti.try_number, "rows": [day] * 200}

    @task
    def load(data: dict[str, Any], **context: Any) -> Any:
        day = context["logical_date"].date().isoformat()
        assert data["day"] == day, f"{data['day']} != {day}"
        assert data["rows"] == [day] * 200
        return {"day": day, "rows": len(data["rows"]), "try": data["try"]}

    load(extract())


the_dag = xcsd_daily()
