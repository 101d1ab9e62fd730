"""A mapped task alone: the map-index rerun test (test_lifecycle.py) clears one index of it.

Three tasks, where xcs_types has a dozen: that test needs a mapped producer, not every value.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

MAPPED_ROWS = [1000, 1500, 2000]  # every frame far above the tests' 1 KiB threshold


@dag(dag_id="xcs_mapped", schedule=None, catchup=False)
def xcs_mapped() -> None:
    @task
    def make_frame(rows: int) -> Any:
        import pandas as pd

        return pd.DataFrame({"row": range(rows), "label": [f"r{i}" for i in range(rows)]})

    make_frame.expand(rows=MAPPED_ROWS)


the_dag = xcs_mapped()
