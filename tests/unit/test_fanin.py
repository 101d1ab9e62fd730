"""core.fanin: many values read at once, in order, bounded, with the first error naming its XCom."""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xcomstore.core import fanin
from xcomstore.core.fanin import READ_AHEAD, Pending
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import CorruptObjectError, ObjectNotFoundError
from xcomstore.identity import Origin, Wanted

MakeStore = Callable[..., XComStore]


class Reads:
    """Pending reads that take a while and record how many run at once, and on which threads."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.running = self.most = self.started = 0
        self.threads: set[str] = set()

    def pending(
        self, value: Any, *, fails: BaseException | None = None, delay: float | None = None
    ) -> Pending:
        def read() -> Any:
            with self.lock:
                self.started += 1
                self.running += 1
                self.most = max(self.most, self.running)
                self.threads.add(threading.current_thread().name)
            try:
                time.sleep(self.delay if delay is None else delay)
                if fails is not None:
                    raise fails
                return value
            finally:
                with self.lock:
                    self.running -= 1

        return Pending(read, f"d/r/t[{value}]/return_value")


def test_values_come_back_in_order_whatever_order_the_reads_finish_in() -> None:
    reads = Reads()
    rng = random.Random(7)
    items = [reads.pending(i, delay=rng.uniform(0, 0.02)) if i % 3 else i for i in range(60)]
    assert fanin.gather(items, 8) == list(range(60))  # every third one inline, passed through
    assert 1 < reads.most <= 8
    assert all(name.startswith("xcomstore-fanin") for name in reads.threads)


def test_at_most_concurrency_reads_run_and_few_items_are_held() -> None:
    reads = Reads()
    taken = 0

    def source() -> Iterator[Pending]:
        nonlocal taken
        for i in range(40):
            taken += 1
            yield reads.pending(i)

    for yielded, value in enumerate(fanin.resolved(source(), 4), start=1):
        assert value == yielded - 1
        # Taken but not handed back yet: those being read and the few read ahead.
        assert taken - yielded < 4 + READ_AHEAD
    assert reads.most == 4


def test_the_source_is_advanced_in_the_calling_thread_only() -> None:
    reads = Reads()
    advanced_in: set[int] = set()

    def source() -> Iterator[Any]:
        for i in range(20):
            advanced_in.add(threading.get_ident())
            yield reads.pending(i)

    assert fanin.gather(source(), 6) == list(range(20))
    assert advanced_in == {threading.get_ident()}


def test_concurrency_one_reads_one_after_another_in_the_calling_thread() -> None:
    reads = Reads(delay=0)
    assert fanin.gather([reads.pending(i) for i in range(10)], 1) == list(range(10))
    assert reads.most == 1
    assert reads.threads == {threading.current_thread().name}


def test_nothing_to_read_starts_no_thread() -> None:
    before = threading.active_count()
    assert fanin.gather([{"inline": 1}, 2, None], 8) == [{"inline": 1}, 2, None]
    assert threading.active_count() == before


def test_the_first_error_in_order_is_raised_naming_its_xcom_and_the_rest_is_cancelled() -> None:
    reads = Reads()
    items = [reads.pending(i) for i in range(100)]
    items[5] = reads.pending(5, fails=ObjectNotFoundError("no such object"), delay=0.05)
    items[7] = reads.pending(7, fails=CorruptObjectError("bad seal"))  # fails sooner, comes later
    values = fanin.resolved(items, 4)
    assert [next(values) for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(ObjectNotFoundError) as info:
        next(values)
    assert info.value.xcom == "d/r/t[5]/return_value"
    assert str(info.value) == "XCom d/r/t[5]/return_value: no such object"
    started = reads.started
    assert started < 5 + 4 + READ_AHEAD + 1  # only the window was ever started
    time.sleep(0.05)
    assert (reads.started, reads.running) == (started, 0)  # nothing runs after the error


def test_an_error_that_names_its_xcom_keeps_it() -> None:
    origin = Origin(dag_id="d", run_id="r", task_id="t", map_index=3, key="k")
    error = CorruptObjectError("bad seal", xcom=origin)
    reads = Reads()
    with pytest.raises(CorruptObjectError) as info:
        fanin.gather([reads.pending(0), reads.pending(1, fails=error)], 4)
    assert info.value.xcom is origin


def test_other_errors_pass_through_as_they_are() -> None:
    reads = Reads()
    with pytest.raises(ZeroDivisionError):
        fanin.gather([reads.pending(0, fails=ZeroDivisionError("x")), reads.pending(1)], 4)


def test_stopping_early_cancels_what_was_not_read_yet() -> None:
    reads = Reads()
    values = fanin.resolved((reads.pending(i) for i in range(1000)), 4)
    assert [next(values) for _ in range(3)] == [0, 1, 2]
    values.close()  # e.g. a `break` out of a for loop over a lazy sequence
    started = reads.started
    assert started <= 3 + 4 + READ_AHEAD
    time.sleep(0.05)
    assert (reads.started, reads.running) == (started, 0)


def test_reads_run_in_the_callers_context() -> None:
    bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="unbound")

    def source() -> Iterator[Pending]:
        for i in range(12):
            token = bound.set(f"xcom-{i}")  # as binding.reading sets it around each SDK read
            try:
                yield Pending(bound.get, f"xcom {i}")
            finally:
                bound.reset(token)

    assert fanin.gather(source(), 4) == [f"xcom-{i}" for i in range(12)]


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fanin.gather([], 0)


# -- with a real store -----------------------------------------------------------------------
def _mapped(store: XComStore, count: int) -> list[Any]:
    rows = []
    for index in range(count):
        origin = Origin(dag_id="d", run_id="r", task_id="shard", map_index=index, key="return_value")
        rows.append(store.push({"index": index, "data": "x" * 2000}, origin))
    return rows


def test_a_store_reads_many_values_at_once(make_xcom_store: MakeStore, store_dir: Path) -> None:
    store = make_xcom_store(threshold="100")
    rows = _mapped(store, 30)
    wanted = Wanted(dag_id="d", run_id="r", task_id="shard", key="return_value")
    pending = [Pending(lambda row=row: store.pull(row, wanted), wanted) for row in rows]
    assert [v["index"] for v in fanin.gather(pending, 8)] == list(range(30))
    damaged = store_dir / "d/r/shard/17/return_value.xcs"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError) as info:
        fanin.gather(pending, 8)
    assert str(info.value.xcom) == "d/r/shard[17]/return_value"  # the instance, not just the task
    assert "d/r/shard/17/return_value.xcs" in str(info.value)


def test_a_new_store_opens_its_locations_once_under_concurrent_reads(tmp_path: Path) -> None:
    """Its locations open on first use; several threads' first reads used to race there (one
    thread calling the tuple another had just put in place of the opener)."""
    settings = Settings.from_mapping({"path": f"file://{tmp_path}", "threshold": "100"})
    rows = _mapped(XComStore.from_settings(settings), 16)
    opened: list[str] = []

    def slow_opener(url: str) -> tuple[Any, str]:
        from xcomstore.storage.location import fsspec_filesystem

        opened.append(url)
        time.sleep(0.05)
        return fsspec_filesystem(url)

    fresh = XComStore.from_settings(settings, opener=slow_opener)
    pending = [Pending(lambda row=row: fresh.pull(row), "shard") for row in rows]
    assert [v["index"] for v in fanin.gather(pending, 8)] == list(range(16))
    assert opened == [f"file://{tmp_path}"]
