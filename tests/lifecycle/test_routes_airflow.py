"""Routes in real Airflow runs (dag.test, SQLite): xcsl_store's three offloaded XComs routed to
three locations at once (a local folder, the S3 server, Azurite), a rule change between two
runs, and `xcomstore gc` after `airflow dags delete` emptying each location.

Three task runs in all: two DAG runs and one rerun of their reader.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.lifecycle.airflow_run import BIN, DAG_ID, SharedAirflow
from tests.lifecycle.stores import run_cli
from tests.servers.azure import AzureServer
from tests.servers.process import conn_env_var
from tests.servers.s3 import S3Server

pytestmark = [pytest.mark.airflow, pytest.mark.s3, pytest.mark.azure]
TEAM = "xcs_team"
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
READ_BACK = {"rows": 2000, "array_sum": 1999000.0, "extra": 5000}


def routes(first: str, second: str, third: str) -> str:
    return f"key=array -> {first}; key=extra -> {second}; task_id=produce, key=return_value -> {third}"


def placed(run: Any, locations: dict[str, str]) -> dict[str, str]:
    """Each offloaded XCom of `run` (its key) and the location (its name) holding its object."""
    return {
        row.key: next(name for name, url in locations.items() if row.value["uri"].startswith(url + "/"))
        for row in run.references()
    }


def test_routed_runs_a_rule_change_and_gc_after_a_dag_delete(
    airflow: SharedAirflow,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    s3_conn_id: str,
    azure_server: AzureServer,
    azure_container: str,
    azure_conn_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    shared, local = f"file://{tmp_path}/shared", f"file://{tmp_path}/local"
    s3 = s3_server.url(s3_conn_id, s3_bucket, "xcom")
    azure = azure_server.url(azure_conn_id, azure_container, "xcom")
    conns = {
        conn_env_var(s3_conn_id): s3_server.airflow_conn_json(),
        conn_env_var(azure_conn_id): azure_server.airflow_conn_json(),
    }
    before, after = routes(s3, azure, local), routes(azure, s3, local)

    first = airflow.run(shared, AIRFLOW__XCOMSTORE__ROUTES=before, **conns)
    assert first.state == "success", first.describe()
    assert first.value("consume") == READ_BACK
    locations = {"shared": shared, "local": local, "s3": s3, "azure": azure}
    assert placed(first, locations) == {"array": "s3", "extra": "azure", "return_value": "local"}

    # The rules change: new values go where they now say, the first run's stay readable.
    second = airflow.run(shared, AIRFLOW__XCOMSTORE__ROUTES=after, **conns)
    assert second.state == "success", second.describe()
    assert placed(second, locations) == {"array": "azure", "extra": "s3", "return_value": "local"}
    again = airflow.rerun(first, "consume", shared, AIRFLOW__XCOMSTORE__ROUTES=after, **conns)
    assert again.state_of("consume") == "success", again.describe()
    assert again.value("consume") == READ_BACK

    # The DAG is deleted: gc finds its orphans in every location.
    airflow.airflow("dags", "delete", DAG_ID, "--yes")
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__ROUTES", after)
    gc = run_cli(capsys, "--path", shared, "gc", "--db-url", airflow.db_url, "--grace", "0s", "--json")
    assert gc.code == 0, gc.out + gc.err
    assert gc.json()["removed"]["orphan"]["objects"] == 6, gc.out
    left = run_cli(capsys, "--path", shared, "ls", "--json")
    assert left.json() == [], left.out


def test_a_teams_xcoms_go_to_its_route(airflow: SharedAirflow, tmp_path: Path) -> None:
    """Multi-team mode for one run: the DAG folder's bundle belongs to a team, and every XCom
    of the DAG goes to that team's location: the return value too, pushed after `execute`,
    outside the task's context (without the plugin's listener that push fails, saying why)."""
    multi_team = {"AIRFLOW__CORE__MULTI_TEAM": "True"}
    created = subprocess.run(
        [str(BIN / "airflow"), "teams", "create", TEAM],
        env={**airflow.cli_env(), **multi_team},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert created.returncode == 0 or "already exists" in created.stderr, created.stderr[-3000:]
    bundles = [{"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}, "team_name": TEAM}]
    shared, own = f"file://{tmp_path}/shared", f"file://{tmp_path}/{TEAM}"
    run = airflow.run(
        shared,
        AIRFLOW__XCOMSTORE__ROUTES=f"team={TEAM} -> {own}; team=other_* -> file://{tmp_path}/other",
        AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(bundles),
        **multi_team,
    )
    assert run.state == "success", run.describe()
    assert run.value("consume") == READ_BACK
    assert sorted(row.key for row in run.references()) == ["array", "extra", "return_value"]
    assert all(row.value["uri"].startswith(own + "/") for row in run.references()), run.references()
