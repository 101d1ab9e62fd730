"""The fixtures and collection hook shared by tests/lifecycle and tests/faults: both run DAGs in
one shared Airflow process, and both use the stores of tests/lifecycle/stores.py. Each folder's
conftest imports them (pytest reads hooks and fixtures from a conftest's namespace)."""

from __future__ import annotations

import pytest
from tests.lifecycle import airflow_run
from tests.lifecycle.stores import file_url, place, raw, s3_fast, s3_outage, s3_url

__all__ = [
    "_airflow_early",
    "airflow",
    "file_url",
    "place",
    "pytest_collection_modifyitems",
    "raw",
    "s3_fast",
    "s3_outage",
    "s3_url",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    airflow_run.order_items(items)


@pytest.fixture(scope="session", autouse=True)
def _airflow_early(request: pytest.FixtureRequest) -> None:
    airflow_run.start_early(request)


@pytest.fixture
def airflow(request: pytest.FixtureRequest) -> airflow_run.SharedAirflow:
    return airflow_run.shared(request)
