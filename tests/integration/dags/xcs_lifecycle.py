"""One producer, one reader: the run that the rerun, forgery and corruption tests work on.

The producer's output depends on $XCS_GENERATION, and $XCS_DROP_EXTRA=1 makes it push one XCom
fewer: a rerun with those set shows whether the old objects were purged, not just overwritten.
$XCS_ASSERT_ABSENT lists object URIs the producer checks are gone when it starts.
"""

from __future__ import annotations

import os
from typing import Any

import xcs_common
from airflow.sdk import dag, task


@dag(dag_id="xcs_lifecycle", schedule=None, catchup=False)
def xcs_lifecycle() -> None:
    @task
    def produce(**context: Any) -> Any:
        import pandas as pd
        from airflow.sdk import ObjectStoragePath

        # The rerun test names the previous objects: they must be gone before this code runs.
        for uri in os.environ.get("XCS_ASSERT_ABSENT", "").split():
            assert not ObjectStoragePath(uri).exists(), f"{uri} still exists when the task starts"
        generation = int(os.environ.get("XCS_GENERATION", "1"))
        if os.environ.get("XCS_DROP_EXTRA") != "1":
            context["ti"].xcom_push(key="extra", value="e" * 5000)
        return pd.DataFrame({"row": range(xcs_common.ROWS), "generation": generation})

    @task
    def consume(frame: Any) -> Any:
        import pandas as pd

        assert isinstance(frame, pd.DataFrame), f"got {type(frame).__qualname__}: {frame!r:.200}"
        return {"rows": len(frame), "generation": int(frame["generation"].iloc[0])}

    consume(produce())


the_dag = xcs_lifecycle()
