"""xcomstore in a real Airflow deployment, once with the LocalExecutor and once with Celery.

Every DAG run is triggered at the start of the module (`started`), so the scheduler works on
all of them at once; each test then waits, bounded, for its own run and checks what the
downstream tasks asserted, what the metadata DB holds, and that the store holds exactly the
objects the DB's references name: one per live XCom, after 200 concurrent mapped pushes, a
clear and re-run, a retry after a failure, and a backfill that reprocesses completed runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from .dags.xcsd_values import COUNT, expected_sum
from .deployment import Deployment, Run, encode_segment

pytestmark = pytest.mark.deployment

RERUN_DATE = "2026-03-01T00:00:00+00:00"
BACKFILL_FROM, BACKFILL_TO = "2026-01-01", "2026-01-03"
BACKFILL_DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
# Bounded waits; generous for a 2-core machine shared with other work.
RUN_TIMEOUT = 240.0
MAPPED_TIMEOUT = 420.0


@dataclass(frozen=True)
class Started:
    mapped: Run
    rerun: Run
    retry: Run


@pytest.fixture(scope="module")
def started(deployment: Deployment) -> Started:
    """Trigger every run now, through the REST API, so the deployment works on all at once."""
    return Started(
        retry=deployment.trigger("xcsd_retry"),
        rerun=deployment.trigger("xcsd_rerun", logical_date=RERUN_DATE),
        mapped=deployment.trigger("xcsd_mapped"),
    )


def assert_one_object_per_reference(deployment: Deployment, dag_id: str, run_id: str | None = None) -> None:
    objects, referenced = deployment.compare(dag_id, run_id)
    assert referenced, f"{dag_id}: no references in the DB"
    assert objects == referenced, (
        f"{dag_id}: store and DB disagree\n"
        f"  objects without a reference: {sorted(objects - referenced)[:10]}\n"
        f"  references without an object: {sorted(referenced - objects)[:10]}"
    )


def xcom_map(deployment: Deployment, run: Run) -> dict[tuple[str, int, str], Any]:
    return {
        (x["task_id"], x["map_index"], x["key"]): x["value"] for x in deployment.xcoms(run.dag_id, run.run_id)
    }


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and "__xcomstore__" in value


# -- a retry after a failure -----------------------------------------------------------------
def test_retry_after_failure_keeps_only_the_last_try(deployment: Deployment, started: Started) -> None:
    run = started.retry
    state = deployment.wait_for_run(run, RUN_TIMEOUT)
    assert state == "success", deployment.explain(run)
    flaky = next(t for t in deployment.task_instances(run) if t["task_id"] == "flaky")
    assert flaky["try_number"] == 2, deployment.explain(run)
    first_try = deployment.task_log_text(run, "flaky", attempt=1)
    assert "failing the first try on purpose" in first_try, first_try[-2000:]
    rows = xcom_map(deployment, run)
    assert rows[("check", -1, "return_value")] == "ok"  # the downstream task's own checks passed
    assert {k for k in rows if k[0] == "flaky"} == {("flaky", -1, "attempt"), ("flaky", -1, "return_value")}
    assert is_ref(rows[("flaky", -1, "attempt")])
    assert is_ref(rows[("flaky", -1, "return_value")])
    # The first try's 'first_try_only' object was purged when the second try started.
    assert_one_object_per_reference(deployment, run.dag_id, run.run_id)


# -- clear and re-run from the CLI -----------------------------------------------------------
def test_clear_and_rerun_replaces_the_objects(deployment: Deployment, started: Started) -> None:
    run = started.rerun
    assert deployment.wait_for_run(run, RUN_TIMEOUT) == "success", deployment.explain(run)
    before = xcom_map(deployment, run)
    assert before[("consume", -1, "return_value")] == {"generation": 1}
    old_ref, extra = before[("produce", -1, "return_value")], before[("produce", -1, "extra")]
    assert is_ref(old_ref)
    assert is_ref(extra)
    assert_one_object_per_reference(deployment, run.dag_id, run.run_id)

    day = RERUN_DATE[:10]
    # (-t is matched as a substring of task ids in Airflow 3.3, despite its name --task-regex.)
    deployment.cli("tasks", "clear", run.dag_id, "-t", "produce", "-d", "-s", day, "-e", day, "-y")

    def rerun_done() -> bool:
        tis = deployment.task_instances(run)
        return deployment.run_state(run) == "success" and all(
            t["state"] == "success" and t["try_number"] == 2 for t in tis
        )

    deployment.wait_for(rerun_done, RUN_TIMEOUT, "the cleared tasks to run again")
    after = xcom_map(deployment, run)
    assert after[("consume", -1, "return_value")] == {"generation": 2}, deployment.explain(run)
    assert ("produce", -1, "extra") not in after
    new_ref = after[("produce", -1, "return_value")]
    assert new_ref["uri"] == old_ref["uri"], "same XCom, same object path"
    assert new_ref["checksum"] != old_ref["checksum"], "the object was not rewritten"
    assert_one_object_per_reference(deployment, run.dag_id, run.run_id)


# -- backfills -------------------------------------------------------------------------------
def test_backfill_and_reprocessing_leave_one_object_per_xcom(
    deployment: Deployment, started: Started
) -> None:
    dag_id = "xcsd_daily"
    deployment.cli(
        "backfill", "create", "--dag-id", dag_id, "--from-date", BACKFILL_FROM, "--to-date", BACKFILL_TO
    )
    runs = wait_for_backfill(deployment, dag_id, expected_try=1)
    refs = deployment.references(dag_id)
    assert {(r["task_id"], r["key"]) for r in refs} == {
        ("extract", "return_value"),
        ("extract", "first_pass"),
    }
    assert len(refs) == 2 * len(BACKFILL_DAYS)
    assert_one_object_per_reference(deployment, dag_id)

    # Again over the same days: the completed runs are cleared and run a second time.
    deployment.cli(
        "backfill", "create", "--dag-id", dag_id, "--from-date", BACKFILL_FROM, "--to-date", BACKFILL_TO,
        "--reprocess-behavior", "completed",
    )  # fmt: skip
    rerun = wait_for_backfill(deployment, dag_id, expected_try=2)
    assert {r.run_id for r in rerun} == {r.run_id for r in runs}, "reprocessing created new runs"
    refs = deployment.references(dag_id)
    assert {(r["task_id"], r["key"]) for r in refs} == {("extract", "return_value")}
    assert len(refs) == len(BACKFILL_DAYS)
    for run in rerun:
        loaded = xcom_map(deployment, run)[("load", -1, "return_value")]
        assert loaded["try"] == 2, loaded
        assert loaded["rows"] == 200
    assert_one_object_per_reference(deployment, dag_id)


def wait_for_backfill(deployment: Deployment, dag_id: str, expected_try: int) -> list[Run]:
    """Until the latest backfill of `dag_id` has completed; its runs must all have succeeded."""

    def completed() -> bool:
        rows = deployment.query(
            "SELECT completed_at FROM backfill WHERE dag_id = %s ORDER BY id DESC LIMIT 1", dag_id
        )
        return bool(rows and rows[0][0] is not None)

    deployment.wait_for(completed, RUN_TIMEOUT, f"the backfill of {dag_id} to complete")
    rows = deployment.query(
        "SELECT run_id, state, logical_date FROM dag_run WHERE dag_id = %s ORDER BY logical_date", dag_id
    )
    runs = [Run(dag_id, r[0]) for r in rows]
    days = [r[2].date().isoformat() for r in rows]
    assert days == BACKFILL_DAYS, f"backfill runs for {days}"
    for run, (_, state, _) in zip(runs, rows, strict=True):
        assert state == "success", deployment.explain(run)
        tries = {t["task_id"]: t["try_number"] for t in deployment.task_instances(run)}
        assert tries["extract"] == expected_try, deployment.explain(run)
    return runs


# -- 200 mapped instances pushing at once ------------------------------------------------------
def test_200_mapped_pushes_are_distinct_and_intact(deployment: Deployment, started: Started) -> None:
    run = started.mapped
    state = deployment.wait_for_run(run, MAPPED_TIMEOUT)
    assert state == "success", deployment.explain(run)
    pushes = [t for t in deployment.task_instances(run) if t["task_id"] == "push"]
    assert sorted(t["map_index"] for t in pushes) == list(range(COUNT))
    assert all(t["state"] == "success" for t in pushes), deployment.explain(run)
    rows = xcom_map(deployment, run)
    # The downstream task pulled every value, compared each with what its index pushed, summed.
    assert rows[("total", -1, "return_value")] == {"count": COUNT, "sum": expected_sum()}
    uris = {
        index: value["uri"] for (task, index, _), value in rows.items() if task == "push" and is_ref(value)
    }
    assert sorted(uris) == list(range(COUNT)), "every map index's value is offloaded"
    assert len(set(uris.values())) == COUNT, "two map indexes share an object"
    for index, uri in uris.items():
        assert uri.endswith(f"/{encode_segment(run.run_id)}/push/{index}/return_value.xcs"), uri
    assert is_ref(rows[("items", -1, "return_value")]), "the expanded list is above the threshold too"
    assert_one_object_per_reference(deployment, run.dag_id, run.run_id)
    objects, _ = deployment.compare(run.dag_id, run.run_id)
    assert len(objects) == COUNT + 1
    # They really ran side by side.
    overlap = max_concurrency(deployment, run, "push")
    print(f"{deployment.kind}: up to {overlap} push instances ran at the same time")
    assert overlap >= 2, f"at most {overlap} push instances ran at the same time"


def max_concurrency(deployment: Deployment, run: Run, task_id: str) -> int:
    rows = deployment.query(
        "SELECT start_date, end_date FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
        run.dag_id,
        run.run_id,
        task_id,
    )
    events: list[tuple[datetime, int]] = []
    for start, end in rows:
        events += [(start, 1), (end, -1)]
    running = best = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        best = max(best, running)
    return best
