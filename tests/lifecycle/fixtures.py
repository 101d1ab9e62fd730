"""Fixtures and the collection hook shared by tests/lifecycle and tests/faults, as a pytest plugin:
tests/conftest.py registers this module in `pytest_plugins` (no conftest star-imports it).

Both folders run DAGs in one shared Airflow process (tests/lifecycle/airflow_run.py) and use the
stores of tests/lifecycle/stores.py. The fixtures are available to the whole suite; the Airflow
process is only started for tests of those two folders.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.lifecycle import airflow_run
from tests.lifecycle.stores import file_url, place, raw, s3_fast, s3_outage, s3_url  # noqa: F401 (fixtures)

#: The folders whose tests share the Airflow process.
AIRFLOW_FOLDERS = (Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "faults")
#: Set once start_early has run: a session-scoped autouse fixture from a plugin would run at the
#: session's first test, in any folder.
_early: list[bool] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    airflow_run.order_items(items)


@pytest.fixture(autouse=True)
def _airflow_early(request: pytest.FixtureRequest) -> None:
    """At the first test of tests/lifecycle or tests/faults, start Airflow in the background if
    any selected test needs it. Once per session: a test that stops the process for good
    (test_without_db) must not have it started again by the next test."""
    if not _early and any(folder in request.node.path.parents for folder in AIRFLOW_FOLDERS):
        _early.append(True)
        airflow_run.start_early(request)


@pytest.fixture
def airflow(request: pytest.FixtureRequest) -> airflow_run.SharedAirflow:
    return airflow_run.shared(request)
