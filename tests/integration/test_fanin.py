"""Fan-in in a real Airflow: a mapped task's offloaded values, received at once, come back in
order from reads that ran concurrently, on each read path (dags/xcs_fanin.py), on a file and
an S3 store; a damaged object among them fails the read, naming that instance's XCom."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from xcomstore.format.container import SEAL_SIZE

from .conftest import Target, param
from .harness import RunResult, flip_byte

pytestmark = pytest.mark.airflow

N = 8
DAMAGED = 5
# Each reader of all map indexes at once, and the indexes it reads.
READERS = {
    "pull_all": range(N),
    "iterate": range(N),
    "slices": range(1, N),
    "pull_api": range(N),
}


def heads(indexes: range) -> list[str]:
    return [f"small-{i}" if i % 4 == 3 else f"part-{i}" for i in indexes]


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
        assert got["reads"] == len([i for i in indexes if i in offloaded]), reader
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
    for reader in ("pull_all", "iterate"):  # all rows then the objects; a stream
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
