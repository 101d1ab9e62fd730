"""Which team an XCom's DAG belongs to, in Airflow's multi-team mode: for `team=` routes.

Airflow (3.3) tells a task its DAG's team in the run context the API server sends when the task
starts: `context["dag_run"].team_name`, filled only with `[core] multi_team` on (the XCom
Execution API is scoped by the same team, airflow#68850). The backend is handed no task
instance, and two of its calls come outside the task's current context: the clearing of old
XComs before it, and the push of its return value after `execute`. So the team is taken from
the current context when there is one, else from what the xcomstore plugin's listener recorded
as the task started running (`on_task_instance_running`, in the task's own process).

A team is known only for the running task's own DAG. Another DAG's XCom (xcom_pull with a
dag_id) may belong to the task's team or to a teamless DAG (multi-team reads allow both), so
its team is UNKNOWN_TEAM there.
"""

from __future__ import annotations

from typing import Any

from xcomstore.core.routes import UNKNOWN_TEAM, Team

# (dag_id, team) of the task this process runs, as the listener saw it start.
_running: tuple[str, str | None] | None = None


def record(task_instance: Any) -> None:
    """Remember the team of the task starting in this process (the SDK's RuntimeTaskInstance;
    a scheduler-side TaskInstance, which runs no task here, is ignored)."""
    global _running
    if not type(task_instance).__module__.startswith("airflow.sdk."):
        return
    dag_id = getattr(task_instance, "dag_id", None)
    if isinstance(dag_id, str):
        _running = (dag_id, _team_name(task_instance.get_template_context().get("dag_run")))


def team_of(dag_id: str) -> Team:
    """The team of `dag_id`'s DAG: a name, None for none (or no multi-team mode), or UNKNOWN_TEAM."""
    if not _multi_team():
        return None
    context = _current_context()
    dag_run = context.get("dag_run") if context is not None else None
    if dag_run is not None and getattr(dag_run, "dag_id", None) == dag_id:
        return _team_name(dag_run)
    if _running is not None and _running[0] == dag_id:
        return _running[1]
    return UNKNOWN_TEAM


def _team_name(dag_run: Any) -> str | None:
    name = getattr(dag_run, "team_name", None)
    return name if isinstance(name, str) and name else None


def _multi_team() -> bool:
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1 and 3.2 read the configuration in core
        from airflow.configuration import conf
    return bool(conf.getboolean("core", "multi_team", fallback=False))


def _current_context() -> Any:
    from airflow.sdk import get_current_context

    try:
        return get_current_context()
    except RuntimeError:  # no task is executing in this thread
        return None
