"""Reach the store from outside a task: the CLI, scripts, notebooks. No metadata DB needed.

import xcomstore
df = xcomstore.read("s3://aws_default@bucket/xcom/my_dag/<run>/extract/-1/return_value.xcs")
for obj in xcomstore.list(dag_id="my_dag"):
    print(obj.uri, obj.header.summary)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xcomstore.airflow import environment
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.storage.headers import StoredObject
from xcomstore.storage.location import fsspec_filesystem


def open_store(path: str | None = None, **options: str) -> XComStore:
    """The store as configured for Airflow (airflow.cfg or AIRFLOW__XCOMSTORE__*), overridable.

    With Airflow installed, connection ids in URLs resolve through Airflow's connections and
    JSON values decode through its serde; without it, fsspec reads credentials from the
    environment and JSON values come back as stored.
    """
    with_airflow = environment.airflow_available()
    raw = environment.read_config() if with_airflow else environment.read_env_config()
    raw.update(options)
    if path is not None:
        raw["path"] = path
    settings = Settings.from_mapping(raw, source="the configuration")
    if with_airflow:
        return XComStore.from_settings(
            settings, opener=environment.airflow_filesystem, json_codec=environment.serde_codec()
        )
    return XComStore.from_settings(settings, opener=fsspec_filesystem)


def read(uri: str, *, path: str | None = None) -> Any:
    """The value stored at `uri`, verified against its checksum."""
    return open_store(path).read(uri)


def list(
    dag_id: str | None = None, run_id: str | None = None, *, path: str | None = None
) -> Iterator[StoredObject]:
    """The objects in the store, optionally of one DAG or one run, described by their headers."""
    return open_store(path).list(dag_id, run_id)
