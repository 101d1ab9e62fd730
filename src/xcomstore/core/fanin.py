"""Fan-in: many values read from the store at once, concurrently and in their order.

A task that receives the values of every instance of a mapped task would otherwise fetch their
objects one after another, each a round trip to the store: 1,000 of them take 1,000 round
trips' time. `resolved` reads them on a bounded pool of threads instead, as a stream: items are
taken from the source as room frees up, handed back in the source's order, and at most
`concurrency + READ_AHEAD` of them are held at a time (so memory is bounded by the pool, not
by the number of values). Plain Python: the Airflow glue decides what is `Pending`.
"""

from __future__ import annotations

import collections
import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from xcomstore.errors import XComStoreError

#: Items taken from the source beyond those being read, so that a slow value at the head does
#: not leave the pool idle; finished values wait there (in order) to be handed back.
READ_AHEAD: Final = 2


@dataclass(frozen=True)
class Pending:
    """A value still in the store: `read()` fetches and decodes it; `xcom` names it in errors."""

    read: Callable[[], Any]
    xcom: object  # an Origin or a Wanted (or its text), as XComStoreError.xcom holds


def gather(items: Iterable[Any], concurrency: int) -> list[Any]:
    """`resolved` as a list."""
    return list(resolved(items, concurrency))


def resolved(items: Iterable[Any], concurrency: int) -> Iterator[Any]:
    """`items` in their order, each `Pending` replaced by its value; anything else as it is.

    At most `concurrency` reads run at once, each in a copy of the calling thread's context
    (contextvars: what the read is bound to) as it was when the item was taken. `items` itself
    is only ever advanced in the calling thread (it may talk to Airflow's supervisor, one row
    at a time). The first item, in order, whose read fails raises its error, naming its XCom;
    the reads not started yet are cancelled and the running ones waited for first, so no read
    outlives the call. With `concurrency` 1 each value is read in the calling thread in turn.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    if concurrency == 1:
        return (_read(item) if isinstance(item, Pending) else item for item in items)
    return _concurrently(iter(items), concurrency)


def _concurrently(source: Iterator[Any], concurrency: int) -> Iterator[Any]:
    window: collections.deque[Future[Any]] = collections.deque()
    pool: ThreadPoolExecutor | None = None  # started on the first value to read
    exhausted = False
    try:
        while True:
            while not exhausted and len(window) < concurrency + READ_AHEAD:
                item = next(source, _END)
                if item is _END:
                    exhausted = True
                elif isinstance(item, Pending):
                    pool = pool or ThreadPoolExecutor(concurrency, thread_name_prefix="xcomstore-fanin")
                    window.append(pool.submit(contextvars.copy_context().run, _read, item))
                else:
                    window.append(_ready(item))
            if not window:
                return
            yield window.popleft().result()
    finally:
        for future in window:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _read(pending: Pending) -> Any:
    try:
        return pending.read()
    except XComStoreError as exc:
        exc.about(xcom=pending.xcom)  # where the read did not name it already
        raise


def _ready(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


_END: Final = object()
