"""Every way a task reads a mapped task's XComs, for the binding tests (test_binding.py).

`produce` is mapped over 3 indexes, each pushing an offloaded value. With $XCS_STOLEN_REF set
(another DAG's reference row, as JSON), instance $XCS_THIEF_INDEX writes that reference into
its own row instead, bypassing serialize_value as any task code can. The readers then take
each read path Airflow has: `.expand` over the output (the execution API's sequence item
endpoint), iterating, indexing and slicing the lazy sequence, `xcom_pull` of all map indexes
(`get_all`) and of listed ones (`get_one` each). Each reader logs the start of what it got, so
a leaked value would show in its log.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.sdk import dag, task

N = 3
SIZE = 4000  # above the tests' 1 KiB threshold: every genuine value is offloaded


def own_value(index: int) -> str:
    return f"part-{index}:" + "p" * SIZE


def head(value: Any) -> str:
    return str(value)[:6]


@dag(dag_id="xcs_binding", schedule=None, catchup=False)
def xcs_binding() -> None:
    @task
    def produce(index: int, **context: Any) -> Any:
        stolen = os.environ.get("XCS_STOLEN_REF")
        if stolen and index == int(os.environ.get("XCS_THIEF_INDEX", "1")):
            from airflow.sdk.execution_time.xcom import XCom

            ti = context["ti"]
            # What a hostile task can do: write a row verbatim, as operator links do.
            XCom._set_xcom_in_db(
                "return_value",
                json.loads(stolen),
                dag_id=ti.dag_id,
                task_id=ti.task_id,
                run_id=ti.run_id,
                map_index=ti.map_index,
            )
            return None  # a mapped task returning None pushes nothing: the forged row stays
        return own_value(index)

    @task
    def consume(value: Any) -> str:
        print(f"consume got {str(value)[:40]!r}")
        return head(value)

    @task
    def iterate(values: Any) -> list[str]:
        got = [str(v)[:40] for v in values]
        print(f"iterate got {got!r}")
        return [head(v) for v in got]

    @task
    def index(values: Any) -> dict[str, Any]:
        length = len(values)  # the count endpoint: no value read
        one, last = values[1], values[-1]
        print(f"index got {str(one)[:40]!r} {str(last)[:40]!r}")
        return {"len": length, "one": head(one), "last": head(last)}

    @task
    def slices(values: Any) -> list[str]:
        got = [str(v)[:40] for v in values[0:N]]
        print(f"slices got {got!r}")
        return [head(v) for v in got]

    @task
    def pull_all(**context: Any) -> list[str]:
        got = [str(v)[:40] for v in context["ti"].xcom_pull(task_ids="produce")]
        print(f"pull_all got {got!r}")
        return [head(v) for v in got]

    @task
    def pull_indexes(**context: Any) -> list[str]:
        values = context["ti"].xcom_pull(task_ids="produce", map_indexes=list(range(N)))
        got = [str(v)[:40] for v in values]
        print(f"pull_indexes got {got!r}")
        return [head(v) for v in got]

    values = produce.expand(index=list(range(N)))
    consume.expand(value=values)
    iterate(values)
    index(values)
    slices(values)
    values >> [pull_all(), pull_indexes()]


the_dag = xcs_binding()
