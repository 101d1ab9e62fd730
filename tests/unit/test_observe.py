"""The task-log line per offloaded value, and the metrics the Airflow observer emits."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from xcomstore.airflow.environment import StatsObserver
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import ObjectNotFoundError
from xcomstore.identity import Origin


class FakeStats:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []

    def incr(self, name: str, count: int = 1, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("incr", name, count, tags or {}))

    def timing(self, name: str, value: float, tags: dict[str, str] | None = None) -> None:
        self.calls.append(("timing", name, value, tags or {}))

    def names(self) -> set[str]:
        return {name for _, name, _, _ in self.calls}


@pytest.fixture
def stats_store(tmp_path: Any) -> tuple[XComStore, FakeStats]:
    observer = StatsObserver()
    fake = FakeStats()
    observer._stats = fake
    settings = Settings.from_mapping({"path": f"file://{tmp_path}", "threshold": "100"})
    return XComStore.from_settings(settings, observer=observer), fake


def test_metrics_for_inline_offloaded_read_and_errors(stats_store: tuple[XComStore, FakeStats]) -> None:
    store, stats = stats_store
    origin = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="key")
    store.push({"a": 1}, origin)
    stored = store.push(b"x" * 1000, origin)
    store.pull(stored)
    assert {
        "xcomstore.inline",
        "xcomstore.offloaded",
        "xcomstore.bytes_written",
        "xcomstore.write_duration",
    } <= stats.names()
    assert {"xcomstore.read", "xcomstore.bytes_read", "xcomstore.read_duration"} <= stats.names()
    written = [c for c in stats.calls if c[1] == "xcomstore.bytes_written"]
    assert written[0][2] == stored["stored_bytes"]
    assert written[0][3] == {"codec": "bytes", "compression": "zstd"}
    store.purge(stored)
    with pytest.raises(ObjectNotFoundError):
        store.pull(stored)
    errors = [c for c in stats.calls if c[1] == "xcomstore.errors"]
    assert errors[-1][3] == {"operation": "read", "kind": "ObjectNotFoundError"}


def test_one_log_line_per_offloaded_value(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    store = XComStore.from_settings(Settings.from_mapping({"path": f"file://{tmp_path}", "threshold": "100"}))
    with caplog.at_level(logging.INFO, logger="xcomstore"):
        store.push({"a": 1}, Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="small"))
        stored = store.push(
            b"x" * 1000, Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="big")
        )
    lines = [r.getMessage() for r in caplog.records if "offloaded" in r.getMessage()]
    assert len(lines) == 1
    assert "big" in lines[0]
    assert "bytes of 1000 B" in lines[0]
    assert stored["uri"] in lines[0]
    assert "zstd" in lines[0]
