"""XComStoreBackend: the Airflow 3 XCom backend, as thin glue over XComStore.

Name it in Airflow's config: `[core] xcom_backend = xcomstore.XComStoreBackend`. Airflow calls
`serialize_value` / `deserialize_value` / `purge` in the task process only; the scheduler, API
server and UI read the metadata DB directly and so see the JSON reference of offloaded values.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

from xcomstore.airflow import binding, fanin
from xcomstore.airflow.binding import expect, reading
from xcomstore.airflow.common_io import CommonIoObjects
from xcomstore.airflow.environment import (
    StatsObserver,
    airflow_filesystem,
    check_filesystems,
    config_fingerprint,
    read_config,
    serde_codec,
)
from xcomstore.airflow.pull import requested
from xcomstore.airflow.team import team_of
from xcomstore.codecs import CodecRegistry, JsonCodec
from xcomstore.core import projection
from xcomstore.core.reference import is_reference
from xcomstore.core.routes import UNKNOWN_TEAM, Team
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import ConfigError, ForgedReferenceError, StartupConfigError
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
        store = current_store()
        return store.push(value, origin, team=_pushing_team(store, origin.dag_id))

    @classmethod
    def deserialize_value(cls, result: Any) -> Any:
        # Airflow passes only the value; which XCom it is comes from the readers that set it.
        stored = result.value
        wanted, store = _bound("read", stored), current_store()
        legacy = current_common_io()
        found = legacy.find(stored, wanted) if legacy else None
        if legacy and found and wanted:  # a row common-io wrote, for this XCom: JSON, read whole
            return projection.apply(legacy.read(found, wanted), projection.Wants.of(**requested()))
        team = _reading_team(store, wanted)
        read = functools.partial(store.pull, stored, wanted, team=team, **requested())
        # Reading many at once (fanin.py), an offloaded value is read later, with the others.
        return fanin.later(read, wanted) if is_reference(stored) else read()

    # Airflow's readers, wrapped to say which XCom is being read: errors can then name it, and a
    # reference copied into this XCom's row from another XCom's is refused.
    @classmethod
    def get_one(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        wanted = expect(key, dag_id, task_id, run_id, kwargs)
        with reading(wanted):
            return super().get_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)

    @classmethod
    async def aget_one(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        wanted = expect(key, dag_id, task_id, run_id, kwargs)
        with reading(wanted):
            return await super().aget_one(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)

    @classmethod
    def delete(cls, key: str, task_id: str, dag_id: str, run_id: str, map_index: int | None = None) -> None:
        with reading(Wanted(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)):
            super().delete(key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index)

    # All map indexes at once: the rows first, then their objects concurrently (fanin.py).
    @classmethod
    def get_all(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        with reading(expect(key, dag_id, task_id, run_id, {**kwargs, "map_index": None})):
            with fanin.deferring():
                rows = super().get_all(key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs)
            return fanin.gather(rows)

    @classmethod
    async def aget_all(cls, *, key: str, dag_id: str, task_id: str, run_id: str, **kwargs: Any) -> Any:
        with reading(expect(key, dag_id, task_id, run_id, {**kwargs, "map_index": None})):
            with fanin.deferring():
                rows = await super().aget_all(
                    key=key, dag_id=dag_id, task_id=task_id, run_id=run_id, **kwargs
                )
            # Off the event loop: the task's other coroutines go on while the objects come.
            return await asyncio.to_thread(fanin.gather, rows)

    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        """Delete the object behind an XCom that Airflow is deleting. Never fails the task."""
        stored = getattr(xcom, "value", None)
        try:
            store, wanted = current_store(), _bound("purge", stored)
            legacy = current_common_io()
            found = legacy.find(stored, wanted) if legacy else None
            if legacy and found:  # common-io's object, written for this XCom
                legacy.delete(found)
                return
            store.purge(stored, wanted, team=_reading_team(store, wanted))
        except Exception as exc:
            # A leftover object is collected later by `xcomstore gc`; a failed task is worse.
            log.warning(
                "xcomstore: could not purge the object of XCom %r: %s", getattr(xcom, "key", "?"), exc
            )


def _bound(operation: str, stored: Any) -> Wanted | None:
    """The XCom this read (or purge) is for; an offloaded value with none is refused, never
    read unchecked: it could be any XCom's object, copied into the row."""
    wanted = binding.wanted()
    if wanted is None and is_reference(stored):
        raise ForgedReferenceError(
            f"refused to {operation} the offloaded value at {stored.get('uri')!r}: the read path "
            "gave no identity (Airflow called the backend outside get_one, get_all, delete and "
            "the lazy XCom sequence), so it cannot be checked that the reference belongs to the "
            "XCom being read"
        )
    return wanted


def _pushing_team(store: XComStore, dag_id: str) -> Team:
    """The team of the DAG pushing, for `team=` routes. When it cannot be told (the plugin's
    listener did not run), an offloaded value whose route depends on it is refused."""
    return team_of(dag_id) if store.routing.uses_team else None


def _reading_team(store: XComStore, wanted: Wanted | None) -> Team:
    """The team of the DAG whose XCom is read, where it can be told (see airflow/team.py)."""
    if not store.routing.uses_team or wanted is None:
        return UNKNOWN_TEAM
    return team_of(wanted.dag_id)


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


def current_common_io() -> CommonIoObjects | None:
    """What common-io wrote before the switch to xcomstore, or None when no common-io path is set."""
    return _common_io_for(config_fingerprint())


@functools.lru_cache(maxsize=4)
def _common_io_for(fingerprint: tuple[Any, ...]) -> CommonIoObjects | None:
    return CommonIoObjects.configured(_settings_for(fingerprint), airflow_filesystem)


@functools.lru_cache(maxsize=4)
def _settings_for(fingerprint: tuple[Any, ...]) -> Settings:
    """The configuration read and checked once per fingerprint: the check at import below is
    also the first store's (var:/conn: keys are not fetched twice)."""
    return Settings.from_mapping(read_config(), source="the Airflow configuration")


def _check_configuration() -> None:
    """Read the settings and load the codecs they name (and the installed codec plugins) now."""
    try:
        settings = _settings_for(config_fingerprint())
        # A broken codec would otherwise fail the first task that makes a store, not start-up.
        # The JSON codec is only a stand-in here: serde is not needed to load the others.
        CodecRegistry.configured(JsonCodec(), settings.codecs)
        check_filesystems(settings.routing, with_airflow=True)
    except ConfigError as exc:
        # from None: the message says it all; the chain would only repeat it, deeper down.
        raise StartupConfigError(str(exc)) from None


# Check the configuration as soon as Airflow loads the backend, in every component: a bad
# setting stops the scheduler, API server and workers at start-up with a message naming it.
_check_configuration()
# Bind the reads that go around get_one/get_all (mapped tasks' lazy sequences), and read the
# sequences' many values concurrently.
binding.install()
fanin.install(lambda: current_store().settings.max_concurrency)
