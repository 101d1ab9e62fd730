"""What xcsl_cio_write pushes under common-io's backend, and what xcsl_cio_read expects back.

Not a DAG: the two DAG files import it (the dags folder is on sys.path, as Airflow puts it).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from typing import Any

WRITER = "xcsl_cio_write"
BASE_ENV = "XCS_CIO_BASE"  # common-io's path, for the lookalike strings
RUN_ENV = "XCS_CIO_RUN"  # the writer's run that the reader pulls from
LOOKALIKE_KEYS = ("not_a_uuid", "other_task", "escaping", "upper_uuid", "elsewhere")


def plain() -> dict[str, Any]:
    """Above the threshold; a datetime that only Airflow's XComDecoder brings back."""
    rows = [{"i": i, "name": f"row {i}"} for i in range(200)]
    return {"rows": rows, "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}


def gzipped() -> list[str]:
    return [f"line {i} " * 4 for i in range(500)]


def lookalikes(run_id: str) -> dict[str, str]:
    """Strings (inline: below the threshold) that look like common-io's paths but are not
    exactly the path common-io would write for the XCom holding them."""
    base = os.environ[BASE_ENV]
    here = f"{base}/{WRITER}/{run_id}"
    texts = (
        f"{here}/lookalike/not-a-uuid.gz",
        f"{here}/gzipped/{uuid.uuid4()}.gz",  # the right shape, but another task's
        f"{here}/lookalike/../../{uuid.uuid4()}",
        f"{here}/lookalike/{str(uuid.uuid4()).upper()}",  # common-io writes lower-case uuids
        f"file:///tmp/{WRITER}/{run_id}/lookalike/{uuid.uuid4()}",  # outside the base
    )
    return dict(zip(LOOKALIKE_KEYS, texts, strict=True))


def use_compression(name: str) -> None:
    """Make common-io compress the next push with `name` ('' for none): it reads the option once
    per process (functools.cache), and one Airflow process runs both of the writer's tasks."""
    from airflow.providers.common.io.xcom import backend

    os.environ["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION"] = name
    backend._get_compression.cache_clear()
