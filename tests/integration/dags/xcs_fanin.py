"""Every way a task receives a mapped task's values at once, for the fan-in tests (test_fanin.py).

`produce` is mapped over N indexes; most values are offloaded, every fourth stays inline. Each
reader takes one read path and returns the head of every value it got, in the order it got
them, with the most object reads it saw running at once (each read is slowed a little, as a
store's latency would, so that concurrent reads overlap): `xcom_pull` of all map indexes,
`xcom_pull` of a list of map indexes and of a list of tasks, iterating and slicing the lazy
sequence, `xcomstore.pull` of all map indexes, of one and of an
unmapped task, and `.expand` over the output (one value per instance). (`axcom_pull` cannot
run here: dag.test()'s in-process supervisor has no `asend`; test_fanin.py checks it apart.)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from airflow.sdk import dag, task

N = 8
SIZE = 4000  # above the tests' 1 KiB threshold
LATENCY = 0.03  # seconds added to each object read
PICKED = [6, 0, 2, 5, 3, 1]  # map indexes asked for in this order (3 is inline)


def value_of(index: int) -> str:
    if index % 4 == 3:
        return f"small-{index}"  # inline: passes through the fan-in untouched
    return f"part-{index}:" + "p" * SIZE


def head(value: Any) -> str:
    return str(value).partition(":")[0]


@contextlib.contextmanager
def counted_reads() -> Iterator[dict[str, Any]]:
    """Count the store's object reads that run at once while the block runs."""
    from xcomstore.core.store import XComStore

    original = XComStore.read_reference
    seen: dict[str, Any] = {"running": 0, "most": 0, "reads": 0}
    lock = threading.Lock()

    def read_reference(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            seen["reads"] += 1
            seen["running"] += 1
            seen["most"] = max(seen["most"], seen["running"])
        try:
            time.sleep(LATENCY)
            return original(self, *args, **kwargs)
        finally:
            with lock:
                seen["running"] -= 1

    XComStore.read_reference = read_reference  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        XComStore.read_reference = original  # type: ignore[method-assign]


def report(values: Any, seen: dict[str, Any]) -> dict[str, Any]:
    heads = [head(v) for v in values]
    print(f"got {heads!r}, {seen['reads']} object reads, at most {seen['most']} at once")
    return {"heads": heads, "most": seen["most"], "reads": seen["reads"]}


@dag(dag_id="xcs_fanin", schedule=None, catchup=False)
def xcs_fanin() -> None:
    @task
    def produce(index: int) -> str:
        return value_of(index)

    @task
    def single() -> str:
        return value_of(0)

    @task
    def consume(value: Any) -> str:
        return head(value)

    @task
    def pull_all(**context: Any) -> dict[str, Any]:
        with counted_reads() as seen:
            return report(context["ti"].xcom_pull(task_ids="produce"), seen)

    @task
    def pull_indexes(**context: Any) -> dict[str, Any]:
        with counted_reads() as seen:
            return report(context["ti"].xcom_pull(task_ids="produce", map_indexes=PICKED), seen)

    @task
    def pull_tasks(**context: Any) -> dict[str, Any]:
        with counted_reads() as seen:
            return report(context["ti"].xcom_pull(task_ids=["single", "produce"]), seen)

    @task
    def iterate(values: Any) -> dict[str, Any]:
        with counted_reads() as seen:
            return report(list(values), seen)  # iterates (after a count)

    @task
    def slices(values: Any) -> dict[str, Any]:
        with counted_reads() as seen:
            return report(values[1:N], seen)

    @task
    def pull_api() -> dict[str, Any]:
        import xcomstore

        with counted_reads() as seen:
            result = report(xcomstore.pull("produce", map_index=None), seen)
        result["one"] = head(xcomstore.pull("produce", map_index=2))
        result["single"] = head(xcomstore.pull("single"))
        result["missing"] = xcomstore.pull("produce", key="no_such_key")
        return result

    values = produce.expand(index=list(range(N)))
    consume.expand(value=values)
    iterate(values)
    slices(values)
    [values, single()] >> pull_api()
    values >> pull_all()
    values >> pull_indexes()
    [values, single()] >> pull_tasks()


the_dag = xcs_fanin()
