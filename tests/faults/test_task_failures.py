"""Faults seen from a real DAG run (Airflow on SQLite, dags/xcsl_store.py): the failed task's own
log says what went wrong, naming the XCom, the URI and the setting or key involved."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.lifecycle.airflow_run import DAG_ID, SharedAirflow
from tests.lifecycle.stores import RawObjects, future_version

pytestmark = pytest.mark.airflow
KEYS = {"AIRFLOW__XCOMSTORE__ENCRYPTION_KEYS": "k1:" + base64.b64encode(bytes(range(32))).decode()}


def test_rejected_type_fails_the_producer_and_stores_nothing(
    airflow: SharedAirflow, tmp_path: Path, raw: RawObjects
) -> None:
    store = f"file://{tmp_path}/store"
    run = airflow.run(store, AIRFLOW__XCOMSTORE__ALLOWED_TYPES="table, json")
    assert run.state_of("produce") == "failed", run.describe()
    assert run.state_of("consume") == "upstream_failed", run.describe()
    message = run.failure("produce")
    for part in (
        "RejectedValueError",
        "/produce/array:",
        "numpy.ndarray",
        "allowed_types",
        "Nothing was stored",
    ):
        assert part in message, f"{part!r} missing from the task's error:\n{message}"
    assert raw.files(store) == []
    assert not run.has_row("produce", "array")


def test_reader_fails_naming_the_xcom_for_a_missing_key_or_a_newer_format(
    airflow: SharedAirflow, tmp_path: Path, raw: RawObjects
) -> None:
    store = f"file://{tmp_path}/store"
    run = airflow.run(store, **KEYS)
    assert run.state == "success", run.describe()
    uri = run.value("produce")["uri"]
    xcom = f"{DAG_ID}/{run.run_id}/produce/return_value"

    keyless = airflow.rerun(run, "consume", store)
    assert keyless.state_of("consume") == "failed", keyless.describe()
    message = keyless.failure("consume")
    for part in (xcom, uri, "'k1'", "encryption_keys"):
        assert part in message, f"{part!r} missing from the task's error:\n{message}"

    original = raw.read(uri)
    raw.write(uri, future_version(original))
    newer = airflow.rerun(run, "consume", store, **KEYS)
    assert newer.state_of("consume") == "failed", newer.describe()
    message = newer.failure("consume")
    for part in (xcom, uri, "newer than this xcomstore reads"):
        assert part in message, f"{part!r} missing from the task's error:\n{message}"

    raw.write(uri, original)
    healed = airflow.rerun(run, "consume", store, **KEYS)
    assert healed.value("consume") == {"rows": 2000, "array_sum": 1999000.0, "extra": 5000}, healed.describe()
