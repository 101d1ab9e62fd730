"""Which XCom Airflow is reading when it hands the backend a row: the binding of every read.

Airflow calls `deserialize_value(result)` with the row's value only (`result.value`; get_one's
`XComResult` adds the key). Which XCom that row is must come from the caller, so the backend
records it in a ContextVar around each SDK method that reads rows and knows what it reads; the
store then refuses a reference whose object belongs to another XCom (copied into this row).

Where the task SDK (1.3.2) calls `deserialize_value`, and what is checked there:

| read path | SDK call site | identity checked |
|---|---|---|
| `xcom_pull(map_indexes=...)`, `get_value`, unmapped XComArg | `BaseXCom.get_one` / `aget_one` | dag, run, task, map index, key |
| `xcom_pull()` of all map indexes | `BaseXCom.get_all` / `aget_all` | dag, run (any with prior dates), task, key |
| `.expand` over a mapped task, lazy sequence (index, slice, iteration, `==`, `hash`) | `LazyXComSequence.__getitem__` | dag, run, task, key |
| `len()` of a lazy sequence | (count endpoint, no value read) | nothing to check |
| clear on (re)start, `XCom.delete` | `BaseXCom.delete` → `purge` | dag, run, task, map index, key |
| any other caller of `deserialize_value` / `purge` | — | refused if offloaded |

The sequence endpoints return values in map-index order without their map indexes (and a
mapped instance that returns None has no row, so an offset is not a map index): there the
map index is not checked, only that the object belongs to the same task's XCom. A read that
reaches the backend with no identity at all (a new SDK path, an SDK layout this module does not
know, user code calling `deserialize_value` itself) is refused for an offloaded value; inline
values are in the row itself and are returned as before.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from xcomstore.identity import Wanted

log = logging.getLogger(__name__)

_wanted: ContextVar[Wanted | None] = ContextVar("xcomstore_wanted", default=None)
# Where the task SDK keeps the lazy sequence of a mapped task's XComs (Airflow 3.x; its fields
# are looked up with getattr in sequence_wanted, so a changed layout is refused, not let through).
_SEQUENCE_MODULES = ("airflow.sdk.execution_time.lazy_sequence",)
_SEQUENCE_CLASS = "LazyXComSequence"
_MARK = "__xcomstore_bound__"


def wanted() -> Wanted | None:
    """The XCom the current read is for, or None when the read path gave no identity."""
    return _wanted.get()


@contextlib.contextmanager
def reading(what: Wanted | None) -> Iterator[None]:
    """Reads inside are for `what` (None: for an unknown XCom, so offloaded values are refused)."""
    token = _wanted.set(what)
    try:
        yield
    finally:
        _wanted.reset(token)


def expect(key: str, dag_id: str, task_id: str, run_id: str, options: dict[str, Any]) -> Wanted:
    """What a get_one/get_all call with these arguments reads (`options`: its other keywords)."""
    prior = bool(options.get("include_prior_dates"))
    return Wanted(
        dag_id=dag_id,
        run_id=None if prior else run_id,
        task_id=task_id,
        map_index=options.get("map_index"),
        key=key,
    )


def sequence_wanted(sequence: Any) -> Wanted | None:
    """What a LazyXComSequence reads: its XComArg's task and key, in its task instance's run.

    None when the object does not have the fields this SDK version is known to have.
    """
    xcom_arg = _field(sequence, "xcom_arg")
    operator = getattr(xcom_arg, "operator", None)
    dag_id, task_id = _text(operator, "dag_id"), _text(operator, "task_id")
    run_id, key = _text(_field(sequence, "ti"), "run_id"), _text(xcom_arg, "key")
    if dag_id is None or task_id is None or run_id is None or key is None:
        return None
    return Wanted(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)


def _text(obj: Any, name: str) -> str | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, str) and value else None


def _field(obj: Any, name: str) -> Any:
    # attrs keeps `_xcom_arg` (alias `xcom_arg`); accept either spelling.
    return getattr(obj, f"_{name}", getattr(obj, name, None))


def install() -> bool:
    """Bind the SDK's lazy sequence reads; False if this SDK has no sequence class we know.

    Without it those reads still reach `deserialize_value`, with no identity: they are refused
    for offloaded values rather than let through unchecked.
    """
    cls = _sequence_class()
    getitem = getattr(cls, "__getitem__", None)
    if cls is None or not callable(getitem):
        log.warning(
            "xcomstore: this Airflow task SDK has no %s we know; offloaded values read through "
            "mapped tasks' lazy sequences will be refused, as their XCom cannot be checked",
            _SEQUENCE_CLASS,
        )
        return False
    bind(cls)
    return True


def bind(cls: Any) -> None:
    """Make `cls.__getitem__` (a lazy sequence's one read) read for `sequence_wanted(self)`."""
    getitem = cls.__getitem__
    if not getattr(getitem, _MARK, False):  # imported twice: wrap once
        cls.__getitem__ = _bound(getitem)


def _sequence_class() -> Any:
    for name in _SEQUENCE_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, _SEQUENCE_CLASS):
            return getattr(module, _SEQUENCE_CLASS)
    return None


def _bound(getitem: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(getitem)
    def __getitem__(self: Any, key: Any) -> Any:
        # Always set (even to None): an outer read's identity must not cover this one.
        with reading(sequence_wanted(self)):
            return getitem(self, key)

    setattr(__getitem__, _MARK, True)
    return __getitem__
