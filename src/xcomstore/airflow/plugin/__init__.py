"""The xcomstore Airflow plugin: an "XCom store" page in the Airflow 3 UI.

It mounts a FastAPI app on the API server at /xcomstore (see xcomstore.airflow.plugin.app) and adds
entries to the UI: one in the Browse menu, and a tab on DAG, DAG run and task instance pages
(Airflow shows these "external views" in an iframe). The app only reads the store, through
xcomstore's Python API, and checks the user's DAG permissions with Airflow's auth manager.

Airflow loads plugins in every component (scheduler, workers, DAG processor), so this module
imports nothing heavy: the app is built on the first request to it, in the API server only.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/xcomstore"
_BASE = URL_PREFIX.lstrip("/")  # UI hrefs are relative to the UI's base URL (a root path works)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyApp:
    """An ASGI app that builds the real FastAPI app when it is first called."""

    def __init__(self) -> None:
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from xcomstore.airflow.plugin.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def _view(name: str, href: str, destination: str, url_route: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "href": href, "destination": destination, "url_route": url_route, **extra}


class TaskListener:
    """As a task starts in this process: records its team, for `team=` routes (the backend is
    handed no task instance: xcomstore.airflow.team), and has its task instance's `xcom_pull`
    read many values at once (xcomstore.airflow.fanin), if xcomstore is the XCom backend."""

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        if not type(task_instance).__module__.startswith("airflow.sdk."):
            return  # a scheduler-side TaskInstance: no task runs in this process
        from xcomstore.airflow import team

        team.record(task_instance)
        if "xcomstore.airflow.backend" in sys.modules:  # xcomstore is the XCom backend
            from xcomstore.airflow import fanin

            fanin.collect_pulls(type(task_instance))


class XComStorePlugin(AirflowPlugin):
    # Airflow reads these as class attributes of the plugin class (it never instantiates it).
    name = "xcomstore"
    listeners = [TaskListener()]  # noqa: RUF012
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "XCom store"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        _view("XCom store", f"{_BASE}/", "nav", "xcomstore", category="browse"),
        _view("XCom store", f"{_BASE}/dags/{{DAG_ID}}", "dag", "xcomstore-dag"),
        _view("XCom store", f"{_BASE}/dags/{{DAG_ID}}/run?run_id={{RUN_ID}}", "dag_run", "xcomstore-run"),
        _view(
            "XCom store",
            f"{_BASE}/dags/{{DAG_ID}}/run?run_id={{RUN_ID}}&task_id={{TASK_ID}}&map_index={{MAP_INDEX}}",
            "task_instance",
            "xcomstore-task",
        ),
    ]
