"""XComStoreBackend: the Airflow 3 XCom backend, as thin glue over XComStore.

Name it in Airflow's config: `[core] xcom_backend = xcomstore.XComStoreBackend`. Airflow calls
`serialize_value` / `deserialize_value` / `purge` in the task process only; the scheduler, API
server and UI read the metadata DB directly and so see the JSON reference of offloaded values.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

from xcomstore.airflow.environment import (
    StatsObserver,
    airflow_filesystem,
    config_fingerprint,
    read_config,
    serde_codec,
)
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.identity import Origin, Wanted

log = logging.getLogger(__name__)


class XComStoreBackend(BaseXCom):
    """Keeps small XComs in the metadata DB and offloads large ones to object storage."""

    @classmethod
    def serialize_value(
        cls,
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> Any:
        origin = Origin(
            dag_id=dag_id or "",
            run_id=run_id or "",
            task_id=task_id or "",
            map_index=-1 if map_index is None else map_index,
            key=key or "",
        )
        return current_store().push(value, origin)

    @classmethod
    def deserialize_value(cls, result: Any) -> Any:
        # Airflow passes only the value; which XCom it is comes from the get_one/get_all below.
        return current_store().pull(result.value, _wanted.get())

    # Airflow's readers, wrapped to say which XCom is being read: errors can then name it, and a
    # reference copied into this XCom's row from another XCom's is refused.
    @classmethod
    def get_one(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        wanted = _expect(key, dag_id, task_id, run_id, kwargs)
        with _reading(wanted):
            return super().get_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)

    @classmethod
    async def aget_one(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        wanted = _expect(key, dag_id, task_id, run_id, kwargs)
        with _reading(wanted):
            return await super().aget_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)

    @classmethod
    def delete(cls, key: str, task_id: str, dag_id: str, run_id: str, map_index: int | None = None) -> None:
        with _reading(Wanted(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)):
            super().delete(key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index)

    @classmethod
    def get_all(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        with _reading(_expect(key, dag_id, task_id, run_id, {**kwargs, "map_index": None})):
            return super().get_all(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)

    @classmethod
    async def aget_all(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        with _reading(_expect(key, dag_id, task_id, run_id, {**kwargs, "map_index": None})):
            return await super().aget_all(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)

    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        """Delete the object behind an XCom that Airflow is deleting. Never fails the task."""
        try:
            current_store().purge(getattr(xcom, "value", None), _wanted.get())
        except Exception as exc:
            # A leftover object is collected later by `xcomstore gc`; a failed task is worse.
            log.warning(
                "xcomstore: could not purge the object of XCom %r: %s", getattr(xcom, "key", "?"), exc
            )


_wanted: ContextVar[Wanted | None] = ContextVar("xcomstore_wanted", default=None)


def _expect(key: str, dag_id: str, task_id: str, run_id: str, options: dict[str, Any]) -> Wanted:
    prior = bool(options.get("include_prior_dates"))
    return Wanted(
        dag_id=dag_id,
        run_id=None if prior else run_id,
        task_id=task_id,
        map_index=options.get("map_index"),
        key=key,
    )


@contextlib.contextmanager
def _reading(wanted: Wanted) -> Iterator[None]:
    token = _wanted.set(wanted)
    try:
        yield
    finally:
        _wanted.reset(token)


def current_store() -> XComStore:
    """The store for the current configuration: read once per process, and again whenever an
    AIRFLOW__XCOMSTORE__* variable changes (small values would otherwise pay for it each time)."""
    return _store_for(config_fingerprint())


@functools.lru_cache(maxsize=4)
def _store_for(fingerprint: tuple[Any, ...]) -> XComStore:
    return XComStore.from_settings(
        _settings_for(fingerprint),
        opener=airflow_filesystem,
        json_codec=serde_codec(),
        observer=StatsObserver(),
    )


@functools.lru_cache(maxsize=4)
def _settings_for(fingerprint: tuple[Any, ...]) -> Settings:
    """The configuration read and checked once per fingerprint: the check at import below is
    also the first store's (var:/conn: keys are not fetched twice)."""
    return Settings.from_mapping(read_config(), source="the Airflow configuration")


# Check the configuration as soon as Airflow loads the backend, in every component: a bad
# setting stops the scheduler, API server and workers at start-up with a message naming it.
_settings_for(config_fingerprint())
