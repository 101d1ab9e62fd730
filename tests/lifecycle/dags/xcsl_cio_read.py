"""Pulls, under xcomstore, what xcsl_cio_write pushed under common-io in another DAG run
(`XCS_CIO_RUN`), and returns what it found: the test reads that from the metadata DB."""

from __future__ import annotations

import json
import os
from typing import Any

import xcsl_cio_values as values
from airflow.sdk import dag, task


@dag(dag_id="xcsl_cio_read", schedule=None, catchup=False)
def xcsl_cio_read() -> None:
    @task
    def pull(**context: Any) -> dict[str, Any]:
        from airflow.utils.json import XComDecoder, XComEncoder

        run_id = os.environ[values.RUN_ENV]

        def get(task_id: str, key: str = "return_value") -> Any:
            return context["ti"].xcom_pull(dag_id=values.WRITER, run_id=run_id, task_ids=task_id, key=key)

        def as_common_io_returns(value: Any) -> Any:  # what common-io's own read gives back
            return json.loads(json.dumps(value, cls=XComEncoder), cls=XComDecoder)

        plain = get("plain")
        found = {
            "plain": plain == as_common_io_returns(values.plain()),
            "plain_when_type": type(plain["when"]).__name__,
            "gzipped": get("gzipped") == as_common_io_returns(values.gzipped()),
        }
        for key in values.LOOKALIKE_KEYS:
            got = get("lookalike", key)
            found[key] = got if isinstance(got, str) else f"not a string: {type(got).__name__}"
        return found

    pull()


the_dag = xcsl_cio_read()
