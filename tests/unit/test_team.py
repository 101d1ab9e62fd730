"""The team of an XCom's DAG, as the backend tells it for `team=` routes (xcomstore.airflow.team):
from the task SDK's own current context and run context models, and the plugin's listener."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import DagRun
from airflow.sdk.execution_time.context import set_current_context

from xcomstore.airflow import team
from xcomstore.airflow.plugin import TaskListener, XComStorePlugin
from xcomstore.core.routes import UNKNOWN_TEAM

NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)


def dag_run(dag_id: str, team_name: str | None) -> DagRun:
    """The run context's DagRun, as the API server sends it to a starting task."""
    return DagRun(
        dag_id=dag_id,
        run_id="run",
        logical_date=NOW,
        data_interval_start=NOW,
        data_interval_end=NOW,
        run_after=NOW,
        start_date=NOW,
        end_date=None,
        run_type="manual",
        state="running",
        consumed_asset_events=[],
        partition_key=None,
        team_name=team_name,
    )


@pytest.fixture
def multi_team(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MULTI_TEAM", "True")


def running(dag_id: str, team_name: str | None) -> Any:
    return set_current_context({"dag_run": dag_run(dag_id, team_name)})  # type: ignore[typeddict-item]


def test_without_multi_team_mode_there_is_no_team() -> None:
    with running("dag", "ml"):
        assert team.team_of("dag") is None


@pytest.mark.usefixtures("multi_team")
def test_the_running_dags_team_comes_from_its_run_context() -> None:
    with running("dag", "ml"):
        assert team.team_of("dag") == "ml"
        assert team.team_of("other_dag") is UNKNOWN_TEAM  # its own team, or a teamless DAG
    with running("dag", None):
        assert team.team_of("dag") is None  # a teamless DAG
    assert team.team_of("dag") is UNKNOWN_TEAM  # no task context, nothing recorded


def test_the_plugin_registers_the_listener_that_records_the_team() -> None:
    assert any(isinstance(listener, TaskListener) for listener in XComStorePlugin.listeners)
    TaskListener().on_task_instance_running(None, object())  # not the SDK's: ignored
    assert team._running is None
