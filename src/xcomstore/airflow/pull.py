"""`xcomstore.pull`: inside a running task, an XCom's value, asked for by what it is.

    frame = xcomstore.pull("extract")                  # this run's extract/return_value
    parts = xcomstore.pull("shard", map_index=None)    # every instance of a mapped task, in order
    one = xcomstore.pull("shard", map_index=3)

The XCom is resolved as `ti.xcom_pull` resolves it: this task's DAG and run unless `dag_id` /
`run_id` say otherwise, through the task SDK and the configured XCom backend, so every read
gets xcomstore's location, signature and binding checks. The values of a mapped task are read
concurrently (fanin.py). `columns` / `to` are handed to the store's read of each value. Outside
a task there is no run to resolve against: `xcomstore.read(uri)` reads an object by its URI.

Airflow is imported only when called: the backend imports this module for `requested`, and the
backend itself is imported while `airflow.sdk` is.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from xcomstore.errors import ConfigError, OutsideTaskError

_NOTHING: Mapping[str, Any] = MappingProxyType({})
_requested: ContextVar[Mapping[str, Any]] = ContextVar("xcomstore_requested", default=_NOTHING)


def requested() -> Mapping[str, Any]:
    """The read options (`columns`, `to`) of the `pull` in progress, only those it was given."""
    return _requested.get()


def pull(
    task_id: str,
    key: str = "return_value",
    *,
    columns: Any = None,
    to: Any = None,
    map_index: int | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
) -> Any:
    """The value of XCom `task_id`/`key` in this run (None if it has none).

    `map_index=None`: an unmapped task's value, or a mapped task's values, as a list in
    map-index order (even of one instance). An int: that instance's value only.
    """
    ti = _running_task()
    options = {name: value for name, value in (("columns", columns), ("to", to)) if value is not None}
    xcom = _backend(bool(options))
    where = {"key": key, "dag_id": dag_id or ti.dag_id, "task_id": task_id, "run_id": run_id or ti.run_id}
    token = _requested.set(MappingProxyType(options))
    try:
        if map_index is not None:
            return xcom.get_one(**where, map_index=map_index)
        # An unmapped task has its row at map index -1; a mapped one has none there.
        value = xcom.get_one(**where, map_index=-1)
        return value if value is not None else xcom.get_all(**where)
    finally:
        _requested.reset(token)


def _running_task() -> Any:
    from airflow.sdk import get_current_context

    try:
        return get_current_context()["ti"]
    except RuntimeError:
        raise OutsideTaskError(
            "xcomstore.pull() reads an XCom as a running Airflow task sees it (its DAG, its run), "
            "and no task is running here; outside a task, read an object by its URI with "
            "xcomstore.read(uri) (`xcomstore ls -l` lists them)"
        ) from None


def _backend(with_options: bool) -> Any:
    """The XCom class the task SDK reads through; with read options it must be xcomstore's."""
    from airflow.sdk.execution_time.xcom import XCom

    ours = sys.modules.get("xcomstore.airflow.backend")  # imported if it is the configured one
    if with_options and (ours is None or not issubclass(XCom, ours.XComStoreBackend)):
        raise ConfigError(
            f"xcomstore.pull(columns=..., to=...) needs [core] xcom_backend = "
            f"xcomstore.XComStoreBackend; this Airflow reads XComs through {XCom.__module__}.{XCom.__qualname__}"
        )
    return XCom
