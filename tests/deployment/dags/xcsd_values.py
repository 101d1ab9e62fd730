"""The values of xcsd_mapped, shared by the DAG and the test (no Airflow import here)."""

from __future__ import annotations

import os
from typing import Any

COUNT = int(os.environ.get("XCSD_MAP_COUNT", "200"))
NUMBERS = 300  # ~2 KB of JSON per value: above the deployment's 1 KiB threshold


def value_for(index: int) -> dict[str, Any]:
    return {"index": index, "numbers": [index * 1000 + j for j in range(NUMBERS)]}


def expected_sum() -> int:
    return sum(sum(value_for(i)["numbers"]) for i in range(COUNT))
