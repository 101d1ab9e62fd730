"""Pushes through common-io's object-storage backend: one value uncompressed, one gzipped (both
above the threshold) and strings that look like its paths. Run with
`[core] xcom_backend = airflow.providers.common.io.xcom.backend.XComObjectStorageBackend`.
"""

from __future__ import annotations

from typing import Any

import xcsl_cio_values as values
from airflow.sdk import dag, task


@dag(dag_id=values.WRITER, schedule=None, catchup=False)
def xcsl_cio_write() -> None:
    @task
    def plain() -> Any:
        values.use_compression("")
        return values.plain()

    @task
    def gzipped() -> Any:
        values.use_compression("gzip")
        return values.gzipped()

    @task
    def lookalike(**context: Any) -> None:
        for key, text in values.lookalikes(context["run_id"]).items():
            context["ti"].xcom_push(key=key, value=text)

    plain() >> gzipped() >> lookalike()


the_dag = xcsl_cio_write()
