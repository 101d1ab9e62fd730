"""Reach the store from outside a task: the CLI, scripts, notebooks. No metadata DB needed.

import xcomstore
df = xcomstore.read("s3://aws_default@bucket/xcom/my_dag/<run>/extract/-1/return_value.xcs")
for obj in xcomstore.list(dag_id="my_dag"):
    print(obj.uri, obj.header.summary)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from xcomstore.airflow.environment import configured_store
from xcomstore.core.store import XComStore
from xcomstore.storage.headers import StoredObject


def open_store(path: str | None = None, **options: str) -> XComStore:
    """The store as configured for Airflow (airflow.cfg or AIRFLOW__XCOMSTORE__*), overridable
    by `path` and by raw options. Works without Airflow installed, from the variables alone."""
    return configured_store(path, **options)


def read(
    uri: str, *, columns: Sequence[str] | None = None, to: str | None = None, path: str | None = None
) -> Any:
    """The value stored at `uri`, verified against its checksum. `columns` selects columns of
    a table (only theirs are read, for tables stored as blocks); `to` converts a table to
    "arrow", "pandas" or "polars" ("numpy" for arrays). See core/projection.py."""
    return open_store(path).read(uri, columns=columns, to=to)


def list(
    dag_id: str | None = None, run_id: str | None = None, *, path: str | None = None
) -> Iterator[StoredObject]:
    """The objects in the store, optionally of one DAG or one run, described by their headers."""
    return open_store(path).list(dag_id, run_id)
