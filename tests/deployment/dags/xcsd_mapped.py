"""200 mapped task instances, each pushing its own value above the threshold, all at once.

`items` pushes the list to expand over (offloaded too: it is above the threshold); each
`push` checks it got the item of its own map index and returns a value that only it can
produce; `total` pulls all 200 and checks every one before returning their count and sum.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from xcsd_values import COUNT, value_for


@dag(dag_id="xcsd_mapped", schedule=None, catchup=False, max_active_tasks=64)
def xcsd_mapped() -> None:
    @task
    def items() -> list[str]:
        return [f"item-{i:04d}" for i in range(COUNT)]

    @task
    def push(item: str, **context: Any) -> Any:
        index = context["ti"].map_index
        assert item == f"item-{index:04d}", f"map index {index} got {item!r}"
        return value_for(index)

    @task
    def total(values: Any) -> Any:
        got = list(values)
        assert len(got) == COUNT, f"{len(got)} values, expected {COUNT}"
        wrong = [i for i, value in enumerate(got) if value != value_for(i)]
        assert not wrong, f"values of map indexes {wrong[:20]} differ from what they pushed"
        return {"count": len(got), "sum": sum(sum(v["numbers"]) for v in got)}

    total(push.expand(item=items()))


the_dag = xcsd_mapped()
