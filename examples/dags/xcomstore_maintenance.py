"""Daily xcomstore maintenance: garbage-collect expired and orphaned objects, repair copies.

Airflow 3 tasks have no metadata DB access, so orphans are found through the REST API. Create
an HTTP connection `xcomstore_airflow_api` pointing at the API server (host, port, login,
password of a user allowed to read every DAG's XComs), e.g.
  AIRFLOW_CONN_XCOMSTORE_AIRFLOW_API='http://admin:admin@localhost:8080'
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Connection, dag, task

GRACE = timedelta(hours=6)  # never touch objects younger than this: their push may be in flight


@dag(
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["xcomstore", "maintenance"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
)
def xcomstore_maintenance() -> None:
    @task
    def collect_garbage() -> dict[str, Any]:
        from xcomstore.client import open_store
        from xcomstore.ops.gc import collect
        from xcomstore.ops.liveness import RestApiIndex

        api = Connection.get("xcomstore_airflow_api")
        url = f"{api.schema or 'http'}://{api.host}:{api.port or 8080}"
        index = RestApiIndex(url, user=api.login, password=api.password)
        return collect(open_store(), index, grace=GRACE.total_seconds()).to_json()

    @task
    def repair_copies() -> dict[str, Any]:
        from xcomstore.client import open_store
        from xcomstore.ops.repair import repair

        store = open_store()
        if len(store.locations) < 2:
            return {"skipped": "one location: nothing to repair"}
        summary = repair(store).to_json()
        return {
            "checked": summary["checked"],
            "copied": len(summary["copied"]),
            "unrecoverable": summary["unrecoverable"],
        }

    collect_garbage() >> repair_copies()


xcomstore_maintenance()
