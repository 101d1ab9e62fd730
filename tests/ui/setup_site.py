"""Prepare an Airflow home for the UI tests; run by site.py in a fresh interpreter, with the
site's environment (AIRFLOW_HOME, SQLite DB, multi-team, DAG bundles, xcomstore settings).

1. create the metadata DB from the ORM (the tests need tables, not the migration history);
2. create the teams, then parse the DAG bundles with `airflow dags reserialize`, so that each
   DAG is in the DB with its bundle, and so its team (what the auth manager checks);
3. create the DAG runs (finished), so Airflow's own pages for them exist;
4. write the stored XComs through XComStore.push, as the backend does in a task.

Prints one JSON line: the runs and objects written.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd

SALES = "sales_forecast"  # team "analytics"
PAYROLL = "payroll"  # team "finance"
SALES_RUN = "scheduled__2026-11-23T00:00:00+00:00"
SALES_RUN_2 = "manual__2026-11-24T09:15:02+00:00"
PAYROLL_RUN = "scheduled__2026-11-01T00:00:00+00:00"
XSS_RUN = "manual__escaping"
XSS = "<script>document.title='pwned'</script><b>bold</b>"


def setup_db() -> None:
    from airflow.utils import db

    db.resetdb()


def airflow_cli(*argv: str) -> None:
    from airflow.cli import cli_parser

    args = cli_parser.get_parser().parse_args(list(argv))
    args.func(args)


def orders(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regions = np.array(["EMEA", "AMER", "APAC", "LATAM"])
    products = np.array(["widget", "gadget", "gizmo", "doohickey", "sprocket"])
    quantity = rng.integers(1, 40, rows)
    return pd.DataFrame(
        {
            "order_id": np.arange(100_000, 100_000 + rows),
            "region": regions[rng.integers(0, len(regions), rows)],
            "product": products[rng.integers(0, len(products), rows)],
            "quantity": quantity,
            "revenue": np.round(quantity * rng.uniform(4.5, 95.0, rows), 2),
            "ordered_at": pd.Timestamp("2026-11-22T00:00:00Z")
            + pd.to_timedelta(np.arange(rows) * 7, unit="s"),
        }
    )


def values() -> list[tuple[str, str, str, int, str, Any]]:
    """(dag, run, task, map_index, key, value) of everything the tests find in the store."""
    rng = np.random.default_rng(7)
    summary = {
        "regions": {
            r: {"orders": int(n), "revenue": float(n) * 51.3}
            for r, n in zip("ABCD", range(900, 904), strict=True)
        },
        "notes": ["forecast horizon 28 days", "model gbm-v3"] * 40,
    }
    return [
        (SALES, SALES_RUN, "extract", -1, "return_value", orders(50_000, 1)),
        (SALES, SALES_RUN, "features", -1, "return_value", rng.normal(0.0, 1.0, (5_000, 8))),
        *[(SALES, SALES_RUN, "forecast", i, "return_value", orders(2_000 + i, 10 + i)) for i in range(3)],
        (SALES, SALES_RUN, "report", -1, "summary", summary),
        (SALES, SALES_RUN, "export", -1, "payload", bytes(range(256)) * 64),
        (SALES, SALES_RUN_2, "extract", -1, "return_value", orders(20_000, 2)),
        (SALES, XSS_RUN, "extract", -1, XSS, pd.DataFrame({XSS: [XSS, "plain"], "n": [1, 2]})),
        (
            PAYROLL,
            PAYROLL_RUN,
            "salaries",
            -1,
            "return_value",
            pd.DataFrame({"employee": ["ann", "bob"] * 600, "salary": [91_000, 87_500] * 600}),
        ),
    ]


def create_runs() -> None:
    """The DAG runs the stored XComs belong to, so that Airflow's own pages for them exist."""
    from datetime import datetime, timezone

    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    runs = sorted({(dag_id, run_id) for dag_id, run_id, *_ in values()})
    with create_session() as session:
        for dag_id, run_id in runs:
            dag = SerializedDagModel.get_dag(dag_id, session=session)
            assert dag is not None, f"DAG {dag_id} was not serialized"
            when = _run_date(run_id) or datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
            run = dag.create_dagrun(
                run_id=run_id,
                logical_date=_run_date(run_id),
                run_after=when,
                run_type=DagRunType(run_id.partition("__")[0]),
                triggered_by=DagRunTriggeredByType.TEST,
                state=DagRunState.SUCCESS,
                start_date=when,
                session=session,
            )
            for ti in run.get_task_instances(session=session):
                ti.state = TaskInstanceState.SUCCESS


def _run_date(run_id: str) -> Any:
    from datetime import datetime

    _, _, stamp = run_id.partition("__")
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def write_store() -> list[dict[str, Any]]:
    from xcomstore.client import open_store
    from xcomstore.identity import Origin

    store = open_store()
    written = []
    for dag_id, run_id, task_id, map_index, key, value in values():
        stored = store.push(
            value, Origin(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)
        )
        written.append(
            {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "key": key, "uri": stored.get("uri")}
        )
    return written


def main() -> int:
    setup_db()
    for team in ("analytics", "finance"):
        airflow_cli("teams", "create", team)
    airflow_cli("dags", "reserialize")
    create_runs()
    print(json.dumps({"objects": write_store()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
