"""Fixtures of the lifecycle tests: copies in several locations, retention, gc, repair, the CLI."""

from __future__ import annotations

import pytest
from tests.lifecycle import airflow_run
from tests.lifecycle.stores import file_url, place, raw, s3_fast, s3_outage, s3_url  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    airflow_run.order_items(items)


@pytest.fixture(scope="session", autouse=True)
def _airflow_early(request: pytest.FixtureRequest) -> None:
    airflow_run.start_early(request)


@pytest.fixture
def airflow(request: pytest.FixtureRequest) -> airflow_run.SharedAirflow:
    return airflow_run.shared(request)
