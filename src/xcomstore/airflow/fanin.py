"""The task SDK's reads of many XComs at once, with their objects fetched concurrently.

The SDK (1.3.2) reads a mapped task's values as rows from its supervisor, then hands each row
to `deserialize_value` in turn, so each offloaded value would wait for the one before it:

| read path | SDK call | here |
|---|---|---|
| `xcom_pull()` of all map indexes, `xcomstore.pull(map_index=None)` | `BaseXCom.get_all` / `aget_all` | the backend's get_all: every row, then the objects concurrently |
| a lazy sequence sliced | `LazyXComSequence.__getitem__(slice)` | the same |
| a lazy sequence iterated (`for`, `list()`, `==`, `hash`, `.map`, `.zip`) | `LazyXComSequence.__iter__` | rows one at a time as the SDK takes them, the objects concurrently, a few rows ahead |
| `xcom_pull(map_indexes=[...])`, `xcom_pull(task_ids=[...])`, a mapped task group's upstream | `RuntimeTaskInstance.xcom_pull` / `axcom_pull`: `get_one` per index, `get_all` per task | the values of the whole call, concurrently |
| `.expand` over a mapped output, an index | `LazyXComSequence.__getitem__(int)` | one value: read at once |

While `deferring()`, the backend's `deserialize_value` returns a core.fanin `Pending` for an
offloaded row instead of reading it (checks and binding unchanged: the read is only put off),
and `gather` / `iterate` resolve those with `[xcomstore] max_concurrency` threads. Around a
whole `xcom_pull`, which calls get_one or get_all once per index or task, `collecting()` makes
those leave their Pendings for the pull to gather at its end, all at once. Rows are
always fetched by the task's own thread, one after another, as the SDK does: only object
reads go to the pool. Inline values are in the row, and pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from xcomstore.core import fanin
from xcomstore.core.fanin import Pending

log = logging.getLogger(__name__)

_deferring: ContextVar[bool] = ContextVar("xcomstore_deferring", default=False)
_collecting: ContextVar[bool] = ContextVar("xcomstore_collecting", default=False)
_SEQUENCE = ("airflow.sdk.execution_time.lazy_sequence", "LazyXComSequence")
_TASK_INSTANCE = ("airflow.sdk.execution_time.task_runner", "RuntimeTaskInstance")
_MARK = "__xcomstore_fan_in__"
#: How many values to read at once: the backend's setting, told by install().
_concurrency: Callable[[], int] = lambda: 1  # noqa: E731  (until install: one after another)


@contextlib.contextmanager
def deferring() -> Iterator[None]:
    """Offloaded values deserialized inside come back as `Pending`, to be read later."""
    token = _deferring.set(True)
    try:
        yield
    finally:
        _deferring.reset(token)


@contextlib.contextmanager
def collecting() -> Iterator[None]:
    """Offloaded values deserialized inside stay `Pending`, also through `gather`: whoever set
    it gathers them all at the end."""
    deferred, collected = _deferring.set(True), _collecting.set(True)
    try:
        yield
    finally:
        _collecting.reset(collected)
        _deferring.reset(deferred)


def later(read: Callable[[], Any], xcom: object) -> Any:
    """`read()` now, or a Pending for it when the current read defers offloaded values."""
    return Pending(read, xcom) if _deferring.get() else read()


def gather(values: list[Any] | None) -> list[Any] | None:
    """`values` with each Pending read, concurrently, in order (None, the SDK's empty, stays);
    while `collecting()`, `values` as they are, for the collector to gather."""
    if values is None or _collecting.get():
        return values
    return fanin.gather(values, _concurrency())


def _gathered(pulled: Any) -> Any:
    """What a collected `xcom_pull` returned, read: one Pending, or a list's concurrently."""
    if isinstance(pulled, Pending):
        return fanin.gather([pulled], 1)[0]
    if isinstance(pulled, list) and any(isinstance(value, Pending) for value in pulled):
        return fanin.gather(pulled, _concurrency())
    return pulled


def iterate(sequence: Any) -> Iterator[Any]:
    """The values of a lazy sequence, in order: rows as the SDK's own iterator takes them (an
    index at a time, until the sequence says IndexError), the objects read concurrently."""
    return fanin.resolved(_rows(sequence), _concurrency())


def _rows(sequence: Any) -> Iterator[Any]:
    index = 0
    while True:
        try:
            with deferring():  # set only around the SDK call, never across a yield
                row = sequence[index]
        except IndexError:
            return
        yield row
        index += 1


def install(concurrency: Callable[[], int]) -> bool:
    """Read lazy sequences' slices and iterations concurrently, `concurrency()` at a time;
    False if this SDK has no sequence class we know (they are then read one by one)."""
    global _concurrency
    _concurrency = concurrency
    collect_pulls(_sdk_class(_TASK_INSTANCE))  # if it is loaded yet; else the plugin does
    cls = _sdk_class(_SEQUENCE)
    if cls is None or not callable(getattr(cls, "__getitem__", None)):
        log.info("xcomstore: no %s in this task SDK; its values are read one after another", _SEQUENCE[1])
        return False
    if not getattr(cls.__iter__, _MARK, False):  # imported twice: wrap once
        cls.__getitem__ = _slices_gathered(cls.__getitem__)
        cls.__iter__ = _iterated
    return True


def collect_pulls(cls: Any) -> None:
    """Make the task instance class's `xcom_pull` / `axcom_pull` gather at their end what they
    read. The backend is imported while the SDK's task runner is (its XCom class is resolved
    as the runner loads), so the runner's class may not exist yet then: the xcomstore plugin's
    listener calls this again as each task starts, with the running task instance's class."""
    if cls is None or not callable(getattr(cls, "xcom_pull", None)):
        return
    if not getattr(cls.xcom_pull, _MARK, False):
        cls.xcom_pull = _pull_collected(cls.xcom_pull)
        if callable(getattr(cls, "axcom_pull", None)):
            cls.axcom_pull = _apull_collected(cls.axcom_pull)


def _pull_collected(xcom_pull: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(xcom_pull)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with collecting():
            pulled = xcom_pull(self, *args, **kwargs)
        return _gathered(pulled)

    setattr(wrapper, _MARK, True)
    return wrapper


def _apull_collected(axcom_pull: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(axcom_pull)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with collecting():
            pulled = await axcom_pull(self, *args, **kwargs)
        return await asyncio.to_thread(_gathered, pulled)  # off the loop, as aget_all's

    return wrapper


def _sdk_class(where: tuple[str, str]) -> Any:
    module, name = where
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def _slices_gathered(getitem: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(getitem)
    def __getitem__(self: Any, key: Any) -> Any:
        if not isinstance(key, slice):
            return getitem(self, key)
        with deferring():
            values = getitem(self, key)
        return gather(values)

    return __getitem__


def _iterated(self: Any) -> Iterator[Any]:
    return iterate(self)


setattr(_iterated, _MARK, True)
