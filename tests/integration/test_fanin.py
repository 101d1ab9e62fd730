"""Fan-in in a real Airflow: a mapped task's offloaded values, received at once, come back in
order from reads that ran concurrently, on each read path (dags/xcs_fanin.py), on a file and
an S3 store; a damaged object among them fails the read, naming that instance's XCom."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

import pytest

from xcomstore.format.container import SEAL_SIZE

from .conftest import Target, param
from .harness import RunResult, flip_byte

pytestmark = pytest.mark.airflow

N = 8
DAMAGED = 5
# Each reader of all map indexes at once, and the indexes it reads.
PICKED = [6, 0, 2, 5, 3, 1]  # dags/xcs_fanin.py's: xcom_pull(map_indexes=PICKED)
READERS: dict[str, list[int | str]] = {
    "pull_all": list(range(N)),
    "iterate": list(range(N)),
    "slices": list(range(1, N)),
    "pull_api": list(range(N)),
    "pull_indexes": list(PICKED),
    "pull_tasks": ["single", *range(N)],
}


def heads(indexes: Iterable[int | str]) -> list[str]:
    return ["part-0" if i == "single" else f"small-{i}" if int(i) % 4 == 3 else f"part-{i}" for i in indexes]


def object_reads(indexes: Iterable[int | str], offloaded: list[int]) -> int:
    return len([i for i in indexes if i == "single" or i in offloaded])


@pytest.fixture(params=[param("file-zstd"), param("s3-zstd")])
def target(request: pytest.FixtureRequest, all_targets: Any) -> Target:
    return all_targets(request.param)  # type: ignore[no-any-return]


def test_many_values_are_read_concurrently_in_order_and_a_damaged_one_is_named(target: Target) -> None:
    run = target.process.dag_test("xcs_fanin")
    assert run.state == "success", run.describe()
    offloaded = [i for i in range(N) if run.row("produce", map_index=i).is_reference]
    assert offloaded == [i for i in range(N) if i % 4 != 3], "the inline/offloaded mix is not as meant"
    for reader, indexes in READERS.items():
        got = run.value(reader)
        assert got["heads"] == heads(indexes), reader
        assert got["reads"] == object_reads(indexes, offloaded), reader
        assert got["most"] > 1, f"{reader} read its values one after another"
    pulled = run.value("pull_api")
    assert (pulled["one"], pulled["single"], pulled["missing"]) == ("part-2", "part-0", None)
    # .expand: each instance reads its own value, and only it.
    assert [run.value("consume", map_index=i) for i in range(N)] == heads(range(N))
    one_by_one = target.process.rerun(run, "pull_all", env={"AIRFLOW__XCOMSTORE__MAX_CONCURRENCY": "1"})
    assert one_by_one.value("pull_all") == {**run.value("pull_all"), "most": 1}
    _damaged_object_is_named(target, run)


def _damaged_object_is_named(target: Target, run: RunResult) -> None:
    uri = run.value("produce", map_index=DAMAGED)["uri"]
    data = target.store.read(uri)
    target.store.write(uri, flip_byte(data, len(data) - SEAL_SIZE - 1))  # the payload's last byte
    for reader in ("pull_all", "iterate", "pull_indexes"):  # all rows, then objects; a stream; get_one each
        rerun = target.process.rerun(run, reader)
        assert rerun.state_of(reader) == "failed", rerun.describe()
        assert not rerun.has_row(reader), f"{reader} produced a value from a damaged object"
        message = rerun.failure(reader)
        assert "CorruptObjectError" in message, f"{reader} failed otherwise:\n{message}"
        assert f"/produce[{DAMAGED}]/return_value" in message, f"{reader}: the XCom is not named:\n{message}"
        assert uri in message, f"{reader}: the object is not named:\n{message}"


# -- no DAG run ------------------------------------------------------------------------------
class AsyncSupervisor:
    """Answers the slice request of `aget_all` with the rows given, as the supervisor would;
    dag.test()'s in-process supervisor has no `asend`, so an async task cannot run there."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    async def asend(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import GetXComSequenceSlice, XComSequenceSliceResult

        assert isinstance(msg, GetXComSequenceSlice), msg
        return XComSequenceSliceResult(root=self.rows)


def test_axcom_pull_of_all_map_indexes_reads_them_concurrently(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time import task_runner

    from xcomstore.core.store import XComStore

    where = {"key": "return_value", "dag_id": "d", "task_id": "t", "run_id": "r"}
    rows = [backend.serialize_value(f"part-{i}:" + "p" * 500, **where, map_index=i) for i in range(6)]
    rows.insert(2, "inline")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", AsyncSupervisor(rows), raising=False)
    threads: list[str] = []
    original = XComStore.read_reference

    def read_reference(self: XComStore, *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(XComStore, "read_reference", read_reference)

    values = asyncio.run(backend.aget_all(**where))
    assert [str(v)[:6] for v in values] == [
        "part-0",
        "part-1",
        "inline",
        "part-2",
        "part-3",
        "part-4",
        "part-5",
    ]
    assert len(threads) == 6
    assert all(name.startswith("xcomstore-fanin") for name in threads), threads


def test_the_sdk_lazy_sequence_iterates_and_slices_through_the_fan_in(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time.lazy_sequence import LazyXComSequence

    from xcomstore.airflow import fanin

    monkeypatch.setattr(fanin, "_concurrency", fanin._concurrency)  # the backend's, again after

    iterate, getitem = LazyXComSequence.__iter__, LazyXComSequence.__getitem__
    assert getattr(iterate, "__xcomstore_fan_in__", False)
    assert getattr(getitem, "__xcomstore_bound__", False)  # the binding is inside
    assert fanin.install(lambda: 8)
    assert (LazyXComSequence.__iter__, LazyXComSequence.__getitem__) == (iterate, getitem)  # once


def test_pull_outside_a_task_says_to_read_by_uri() -> None:
    import xcomstore
    from xcomstore.errors import OutsideTaskError

    with pytest.raises(OutsideTaskError, match=r"no task is running here.*xcomstore\.read\(uri\)"):
        xcomstore.pull("extract")


def test_the_plugin_listener_has_xcom_pull_gather_when_the_task_runner_loaded_first(
    backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend is imported while the SDK's task runner is, before the runner defines its
    task instance class: the listener, as a task starts, wraps that class's pulls."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from xcomstore.airflow.plugin import TaskListener

    plain = {}
    for name in ("xcom_pull", "axcom_pull"):  # as the runner defines them, unwrapped
        method = getattr(RuntimeTaskInstance, name)
        plain[name] = getattr(method, "__wrapped__", method)
        monkeypatch.setattr(RuntimeTaskInstance, name, plain[name])

    TaskListener().on_task_instance_running(None, RuntimeTaskInstance.model_construct())
    assert getattr(RuntimeTaskInstance.xcom_pull, "__xcomstore_fan_in__", False)
    assert RuntimeTaskInstance.xcom_pull.__wrapped__ is plain["xcom_pull"]
    assert RuntimeTaskInstance.axcom_pull.__wrapped__ is plain["axcom_pull"]


def test_a_collected_pull_reads_what_it_deferred_at_its_end_concurrently_in_order(backend: Any) -> None:
    """xcom_pull / axcom_pull as collect_pulls wraps them: get_one per index defers each
    offloaded value, and the pull reads them all at its end, on the pool (no SDK needed)."""
    from xcomstore.airflow import fanin

    threads: list[str] = []

    def read(index: int) -> str:
        threads.append(threading.current_thread().name)
        return f"v{index}"

    class TaskInstance:
        def xcom_pull(self, indexes: Any) -> Any:
            found = [fanin.later(lambda i=i: read(i), f"x[{i}]") for i in indexes]
            return found if isinstance(indexes, list) else found[0]

        async def axcom_pull(self, indexes: Any) -> Any:
            return self.xcom_pull(indexes)

    fanin.collect_pulls(TaskInstance)
    assert TaskInstance().xcom_pull([4, 1, 3]) == ["v4", "v1", "v3"]
    assert asyncio.run(TaskInstance().axcom_pull([2, 0])) == ["v2", "v0"]
    assert all(name.startswith("xcomstore-fanin") for name in threads), threads
    assert TaskInstance().xcom_pull(range(7, 8)) == "v7"  # one value: read, not a Pending
    inline = ["a", "b"]
    assert fanin._gathered(inline) is inline  # a value that is a list is handed back as it is
