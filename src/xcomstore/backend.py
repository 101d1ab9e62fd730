"""XComStoreBackend: the Airflow 3 XCom backend, as thin glue over XComStore.

Name it in Airflow's config: `[core] xcom_backend = xcomstore.XComStoreBackend`. Airflow calls
`serialize_value` / `deserialize_value` / `purge` in the task process only; the scheduler, API
server and UI read the metadata DB directly and so see the JSON reference of offloaded values.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

from xcomstore.airflow_env import StatsObserver, airflow_filesystem, read_config, serde_codec
from xcomstore.api import XComStore
from xcomstore.objectformat import Origin
from xcomstore.settings import Settings

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
            dag_id or "", run_id or "", task_id or "", -1 if map_index is None else map_index, key or ""
        )
        return current_store().push(value, origin)

    @classmethod
    def deserialize_value(cls, result: Any) -> Any:
        return current_store().pull(result.value)

    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        """Delete the object behind an XCom that Airflow is deleting. Never fails the task."""
        try:
            current_store().purge(getattr(xcom, "value", None))
        except Exception as exc:
            # A leftover object is collected later by `xcomstore gc`; a failed task is worse.
            log.warning(
                "xcomstore: could not purge the object of XCom %r: %s", getattr(xcom, "key", "?"), exc
            )


def current_store() -> XComStore:
    """The store for the current configuration (rebuilt only when the configuration changes)."""
    return _store_for(tuple(sorted(read_config().items())))


@functools.lru_cache(maxsize=4)
def _store_for(raw: tuple[tuple[str, str], ...]) -> XComStore:
    settings = Settings.from_mapping(dict(raw), source="the Airflow configuration")
    return XComStore.from_settings(
        settings, opener=airflow_filesystem, json_codec=serde_codec(), observer=StatsObserver()
    )


# Check the configuration as soon as Airflow loads the backend, in every component: a bad
# setting stops the scheduler, API server and workers at start-up with a message naming it.
Settings.from_mapping(read_config(), source="the Airflow configuration")
