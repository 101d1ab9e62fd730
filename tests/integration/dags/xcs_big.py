"""One large value (100 MiB by default, $XCS_BIG_BYTES) pushed, pulled and compared.

With xcomstore the metadata DB keeps only a small reference; with Airflow's default backend
the whole value goes into the DB row, which MySQL/MariaDB refuse above max_allowed_packet.
"""

from __future__ import annotations

from typing import Any

import xcs_common
from airflow.sdk import dag, task


@dag(dag_id="xcs_big", schedule=None, catchup=False)
def xcs_big() -> None:
    @task
    def push_big() -> str:
        return xcs_common.big_text()

    @task
    def check_big(value: Any, **context: Any) -> None:
        xcs_common.check(context, {"big": xcs_common.big_text()}, {"big": value})

    check_big(push_big())


the_dag = xcs_big()
