"""Runs inside a fresh Airflow process for harness.AirflowProcess: one JSON command per stdin line.

Answers go as one JSON line each to the file descriptor in XCS_RESULT_FD, never to stdout,
which carries Airflow's (and the tasks') logs. Each command's log is bracketed with markers so
the harness can hand it to the test with the result.

Nothing in here knows about xcomstore: it only drives Airflow and reads its metadata DB, so
the tests see exactly what Airflow stored.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MARKER = "@@xcs-runner@@"
_START = time.monotonic()
_DAGS_FOLDER = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
_answers = os.fdopen(int(os.environ["XCS_RESULT_FD"]), "w", buffering=1)
_dags: dict[str, Any] = {}


def answer(ok: bool, result: Any = None, error: str = "") -> None:
    _answers.write(json.dumps({"ok": ok, "result": result, "error": error}, default=repr) + "\n")
    _answers.flush()


def warm_up() -> None:
    """Pay the fixed costs now, while the test process is still busy starting other runners."""
    sys.path.insert(0, str(_DAGS_FOLDER))  # as Airflow does for DAG files: lets them share code
    import airflow.sdk  # noqa: F401  (resolves, and so imports, the configured XCom backend)
    import httpx
    from airflow.sdk.execution_time import supervisor

    # Airflow 3.1 and 3.2 build a new in-process execution API (its app, versioned routes and
    # event-loop thread, ~4 s of CPU) for every task dag.test() runs: most of a DAG run's cost,
    # 16 times what the same run costs on 3.3, which builds one per process (lru_cache on
    # in_process_api_server). Do what 3.3 does. Only dag.test() and the triggerer call it; a
    # deployed worker talks to the API server.
    if not hasattr(supervisor.in_process_api_server, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)
    # The in-process execution API builds its app (~3 s) and then its routes on the first
    # request (~5 s); dag.test() would pay both in the first task. Any request will do.
    api = supervisor.in_process_api_server()
    # Not closed: closing the client would close the transport that dag.test() reuses.
    httpx.Client(transport=api.transport, base_url="http://in-process.invalid/").get("/execution/health")
    import xcs_common

    xcs_common.import_data_libraries()


def load_dag(dag_id: str) -> Any:
    """Import dags/<dag_id>.py (the DAG must live in the dags folder for dag.test to find it)."""
    if dag_id not in _dags:
        from airflow.sdk import DAG

        spec = importlib.util.spec_from_file_location(dag_id, _DAGS_FOLDER / f"{dag_id}.py")
        assert spec is not None, dag_id
        assert spec.loader is not None, dag_id
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found = [v for v in vars(module).values() if isinstance(v, DAG) and v.dag_id == dag_id]
        assert found, f"dags/{dag_id}.py defines no DAG with dag_id {dag_id!r}"
        _dags[dag_id] = found[0]
    return _dags[dag_id]


@contextlib.contextmanager
def patched_env(env: dict[str, str]) -> Iterator[None]:
    """Environment for the DAG's own code (tasks run in this process) during one command."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def snapshot(dag_id: str, run_id: str) -> dict[str, Any]:
    """The run's state, task instances and XCom rows exactly as the metadata DB holds them."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        ti_rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state, TaskInstance.try_number)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        ).all()
        xcom_rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.key, XComModel.value)
            .where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
            .order_by(XComModel.task_id, XComModel.map_index, XComModel.key)
        ).all()
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": _text(state),
        "tis": [{"task_id": t, "map_index": m, "state": _text(s), "try_number": n} for t, m, s, n in ti_rows],
        "xcoms": [{"task_id": t, "map_index": m, "key": k, "value": v} for t, m, k, v in xcom_rows],
        "reports": read_reports(run_id),
    }


def _text(state: Any) -> str | None:
    return None if state is None else str(getattr(state, "value", state))


def read_reports(run_id: str) -> dict[str, Any]:
    import xcs_common

    return xcs_common.read_reports(run_id)


def op_dag_test(dag_id: str, env: dict[str, str]) -> dict[str, Any]:
    dag = load_dag(dag_id)
    with patched_env(env):
        run = dag.test()
    return snapshot(dag_id, run.run_id)


def op_rerun(
    dag_id: str, run_id: str, task_id: str, map_index: int | None, env: dict[str, str]
) -> dict[str, Any]:
    """Clear a task like the UI's "Clear" does, then run it as dag.test() would.

    `clear_task_instances` only resets the state; the XCom rows stay until the task runs again,
    when the task runner deletes them through the backend (XCom.delete -> purge) first.
    """
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    dag = load_dag(dag_id)
    query = select(TaskInstance).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
    )
    if map_index is not None:
        query = query.where(TaskInstance.map_index == map_index)
    with create_session() as session:
        tis = list(session.scalars(query))
        assert tis, f"no task instance {task_id}[{map_index}] in {run_id}"
        clear_task_instances(tis, session)
        _start_queued_run(session, dag_id, run_id)
    with patched_env(env), create_session() as session:
        tis = list(session.scalars(query.order_by(TaskInstance.map_index)))
        for ti in tis:
            ti.try_number += 1  # what dag.test() does before running a scheduled TI
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in tis:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id])
    return snapshot(dag_id, run_id)


def _start_queued_run(session: Any, dag_id: str, run_id: str) -> None:
    """What the scheduler does next to the run the clear has queued: start it.

    Clearing a task of a finished run queues the run and empties its start_date. Airflow 3.1
    refuses to run a task of a run without a start_date (the execution API's TIRunContext
    requires one; 3.2 and 3.3 accept None), so do what the scheduler would first.
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils import timezone
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if run is not None and run.state == DagRunState.QUEUED:
        run.state = DagRunState.RUNNING
        if run.start_date is None:
            run.start_date = timezone.utcnow()


def op_set_xcom(dag_id: str, run_id: str, task_id: str, key: str, map_index: int, value: Any) -> int:
    """Overwrite a stored XCom value verbatim, as the REST API's PATCH (serialize=False) does."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        result = session.execute(
            update(XComModel)
            .where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
                XComModel.map_index == map_index,
            )
            .values(value=value)
        )
        assert result.rowcount == 1, f"no XCom {task_id}[{map_index}]/{key} in {run_id}"
        return int(result.rowcount)


def op_snapshot(dag_id: str, run_id: str) -> dict[str, Any]:
    return snapshot(dag_id, run_id)


def op_row_sizes(dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """How many bytes each XCom row's value takes in the metadata DB, measured by the DB itself."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import LargeBinary, Text, cast, func, select

    with create_session() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            size = func.octet_length(cast(XComModel.value, Text))  # JSONB as its text form
        elif dialect == "mysql":
            size = func.length(XComModel.value)  # LONGTEXT: LENGTH() counts bytes
        else:
            size = func.length(cast(XComModel.value, LargeBinary))  # SQLite: bytes of the text
        rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.key, size).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id
            )
        ).all()
    return [{"task_id": t, "map_index": m, "key": k, "bytes": int(b or 0)} for t, m, k, b in rows]


def op_default_forms(names: list[str]) -> dict[str, Any]:
    """What Airflow's default backend stores for these values (None: it cannot store them)."""
    import xcs_common
    from airflow.sdk.bases.xcom import BaseXCom

    forms: dict[str, Any] = {}
    for name in names:
        try:
            forms[name] = BaseXCom.serialize_value(xcs_common.make_value(name))
        except (TypeError, AttributeError):
            forms[name] = None
    return forms


OPS: dict[str, Callable[..., Any]] = {
    "dag_test": op_dag_test,
    "rerun": op_rerun,
    "set_xcom": op_set_xcom,
    "snapshot": op_snapshot,
    "default_forms": op_default_forms,
    "row_sizes": op_row_sizes,
}


def serve() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        number = command["n"]
        if command["op"] == "exit":
            answer(True)
            # Skip interpreter shutdown: Airflow's exit hooks take seconds and nothing is pending
            # (every command commits its own session).
            os._exit(0)
        print(f"{MARKER} begin {number}", flush=True)
        try:
            result = OPS[command["op"]](**command["args"])
        except BaseException:
            print(f"{MARKER} end {number}", flush=True)
            answer(False, error=traceback.format_exc())
            continue
        print(f"{MARKER} end {number}", flush=True)
        answer(True, result)


def main() -> None:
    try:
        warm_up()
    except BaseException:
        traceback.print_exc()  # e.g. Airflow refusing the configured backend: goes to the log
        print(f"{MARKER} end 0", flush=True)
        answer(False, error=traceback.format_exc())
        return
    print(f"{MARKER} end 0", flush=True)
    answer(True, {"seconds": round(time.monotonic() - _START, 2)})
    serve()


if __name__ == "__main__":
    main()
