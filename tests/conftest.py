"""Fixtures for the whole suite, registered as plugins (started or set up only when a test asks):
the object-store servers, and the stores and shared Airflow of tests/lifecycle and tests/faults."""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["tests.servers.fixtures", "tests.lifecycle.fixtures"]

INTEGRATION = "tests/integration"


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: only called when xdist runs
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Two workers (scripts/test), each given whole modules, as `--dist loadscope` does (a
    module-scoped fixture starts a deployment or an Airflow once), except that all of
    tests/integration goes to one worker: its first test starts every Airflow process the
    selected integration tests need (its `_start_early`), and two workers would each start
    them all. (xdist's own loadgroup marks no longer reach its scheduler under pytest 9.2.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndIntegration(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return INTEGRATION if module.startswith(INTEGRATION + "/") else module

    return ModulesAndIntegration(config, log)


# The longest units first, so that neither worker is left with one at the end: the deployments
# (about 6 minutes), then tests/integration (one unit, above), then the fuzz run.
_FIRST = ("tests/deployment/", INTEGRATION + "/", "tests/fuzz/")


@pytest.hookimpl(trylast=True)  # after the folders' own ordering, which the stable sort keeps
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, start in enumerate(_FIRST) if item.nodeid.startswith(start)), len(_FIRST))

    items.sort(key=rank)
