"""Shared fixtures of the core unit tests (no Airflow, no network)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.identity import Origin
from xcomstore.storage.retry import RetryPolicy

#: Retries without real waiting, so that tests of failures stay fast.
FAST_RETRY = RetryPolicy(retries=2, timeout=10.0, first_wait=0.0001)


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return FAST_RETRY


@pytest.fixture
def make_origin() -> Callable[..., Origin]:
    """Origin("dag", "run", "task", -1, "return_value"), any field overridable by keyword."""

    def make(**fields: object) -> Origin:
        base: dict[str, object] = {
            "dag_id": "dag",
            "run_id": "run",
            "task_id": "task",
            "map_index": -1,
            "key": "return_value",
        }
        base.update(fields)
        return Origin(**base)  # type: ignore[arg-type,unused-ignore]

    return make


@pytest.fixture
def origin(make_origin: Callable[..., Origin]) -> Origin:
    return make_origin()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """The folder a file:// XComStore writes into (it does not exist yet)."""
    return tmp_path / "store"


@pytest.fixture
def make_xcom_store(store_dir: Path) -> Callable[..., XComStore]:
    """An XComStore on file://<tmp>/store; keyword arguments are raw [xcomstore] settings."""

    def make(**options: str) -> XComStore:
        settings = Settings.from_mapping({"path": f"file://{store_dir}", **options})
        return XComStore.from_settings(settings)

    return make


@pytest.fixture
def clean_memory_fs() -> Iterator[MemoryFileSystem]:
    """The memory:// filesystem, emptied before and after the test (its store is class-level)."""

    def clear() -> None:
        MemoryFileSystem.store.clear()
        MemoryFileSystem.pseudo_dirs[:] = [""]

    clear()
    yield MemoryFileSystem()
    clear()
