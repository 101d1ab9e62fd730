"""The xcom table as `xcomstore migrate` reads and rewrites it: a value in either form Airflow
keeps (JSON, or a JSON string of JSON text) is read as Airflow reads it and written back in its
form; a row that changed since it was read is left as it is."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, create_engine, insert, select

from xcomstore.ops.xcom_rows import MetadataDbRows

PATH = "s3://conn@bucket/cio/dag/run/task/0b9f3c2e-8a51-4b7e-9d0a-1c2b3d4e5f60.gz"


def make_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/airflow.db"
    table = Table(
        "xcom",
        MetaData(),
        Column("dag_id", String, primary_key=True),
        Column("run_id", String, primary_key=True),
        Column("task_id", String, primary_key=True),
        Column("map_index", Integer, primary_key=True),
        Column("key", String, primary_key=True),
        Column("value", JSON),
    )
    engine = create_engine(url)
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        for task, value in [("direct", PATH), ("twice", json.dumps(PATH)), ("inline", {"a": 1})]:
            connection.execute(
                insert(table).values(
                    dag_id="dag", run_id="run", task_id=task, map_index=-1, key="return_value", value=value
                )
            )
    return url


def stored(url: str) -> dict[str, object]:
    engine = create_engine(url)
    table = Table("xcom", MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(select(table.c.task_id, table.c.value))}


def test_rows_read_as_airflow_reads_them_and_keep_their_form(tmp_path: Path) -> None:
    url = make_db(tmp_path)
    rows = {row.origin.task_id: row for row in MetadataDbRows(url).rows("dag")}
    assert set(rows) == {"direct", "twice"}  # an inline dict can be no path
    assert rows["direct"].value == rows["twice"].value == PATH
    reference = {"__xcomstore__": 1, "uri": "file:///x"}
    assert MetadataDbRows(url).replace(rows["direct"], reference)
    assert MetadataDbRows(url).replace(rows["twice"], reference)
    now = stored(url)
    assert now["direct"] == reference
    assert now["twice"] == json.dumps(reference)
    assert {row.origin.task_id for row in MetadataDbRows(url).rows("dag")} == {"direct", "twice"}


def test_a_row_changed_since_it_was_read_is_left_alone(tmp_path: Path) -> None:
    url = make_db(tmp_path)
    rows = MetadataDbRows(url)
    row = next(r for r in rows.rows() if r.origin.task_id == "direct")
    assert rows.replace(row, "someone else's")
    assert not rows.replace(row, {"__xcomstore__": 1})
    assert stored(url)["direct"] == "someone else's"
    assert list(rows.rows("other_dag")) == []
