"""The metadata DB's xcom table, read and (for `xcomstore migrate`) rewritten one row at a time.

The table is reflected from the DB, so its value column is read and written with the type the
DB has (JSON, JSONB on PostgreSQL), whatever Airflow's version. Airflow keeps a value either as
JSON (what tasks push through the execution API) or as a JSON string of its JSON text (what
`XComModel.set` serializes); a row is written back in the form it was in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from xcomstore.core.reference import is_reference
from xcomstore.identity import Origin
from xcomstore.ops.migrate import XComRow


class MetadataDbRows:
    """XCom rows of the metadata DB at `url` (a SQLAlchemy URL)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import MetaData, Table, create_engine

        self._engine = create_engine(url)
        self._table = Table("xcom", MetaData(), autoload_with=self._engine)

    def rows(self, dag_id: str | None = None) -> Iterator[XComRow]:
        from sqlalchemy import select

        table = self._table
        query = select(
            table.c.dag_id, table.c.run_id, table.c.task_id, table.c.map_index, table.c.key, table.c.value
        ).order_by(table.c.dag_id, table.c.run_id, table.c.task_id, table.c.map_index, table.c.key)
        if dag_id is not None:
            query = query.where(table.c.dag_id == dag_id)
        with self._engine.connect() as connection:
            found = connection.execute(query).all()
        for dag, run, task, index, key, raw in found:
            value = as_airflow_reads(raw)
            if isinstance(value, str) or is_reference(value):
                origin = Origin(dag_id=dag, run_id=run, task_id=task, map_index=int(index), key=key)
                yield XComRow(origin, value, raw)

    def replace(self, row: XComRow, value: Any) -> bool:
        from sqlalchemy import select, update

        table, origin = self._table, row.origin
        where = (
            (table.c.dag_id == origin.dag_id)
            & (table.c.run_id == origin.run_id)
            & (table.c.task_id == origin.task_id)
            & (table.c.map_index == origin.map_index)
            & (table.c.key == origin.key)
        )
        with self._engine.begin() as connection:  # one transaction: committed, or nothing
            now = connection.execute(select(table.c.value).where(where).with_for_update()).all()
            if len(now) != 1 or now[0][0] != row.raw:
                return False
            written = json.dumps(value) if _encoded_twice(row.raw) else value
            connection.execute(update(table).where(where).values(value=written))
        return True


def as_airflow_reads(raw: Any) -> Any:
    """The row's value as Airflow's XComModel.deserialize_value reads it: a string of JSON text
    is decoded once more; any other value (JSON the DB decoded) is what it is."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _encoded_twice(raw: Any) -> bool:
    return isinstance(raw, str) and as_airflow_reads(raw) != raw
