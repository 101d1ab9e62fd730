"""Airflow's own keys stay in the DB even with threshold 0, so branching keeps working."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Target, param
from .harness import is_reference

pytestmark = pytest.mark.airflow


@pytest.mark.parametrize("name", [param("file-lz4-t0"), param("s3-none-t0")])
def test_branch_with_threshold_zero(all_targets: Any, name: str) -> None:
    target: Target = all_targets(name)
    run = target.process.dag_test("xcs_branch")
    states = {ti.task_id: ti.state for ti in run.tis}
    assert states == {
        "choose": "success",
        "left": "success",
        "right": "skipped",
        "join": "success",
        "internal_key": "success",
    }, run.describe()
    # Stored as the default backend stores it: the scheduler reads this row itself.
    assert run.value("choose", "skipmixin_key") == {"followed": ["left"]}
    assert run.value("internal_key", "past_depends_met") == {"met": True, "pad": "p" * 300}
    # Everything else is offloaded with threshold 0, even a tiny return value.
    assert is_reference(run.value("left")), run.value("left")
