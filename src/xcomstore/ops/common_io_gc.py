"""Garbage collection under common-io's path: the objects common-io wrote whose XCom is gone.

common-io's XCom backend never deletes an object when a DAG run is deleted or `airflow db
clean` drops its rows; after the switch to xcomstore nothing would. This finds them as gc finds
xcomstore's orphans, with the same rules: only a file named exactly as common-io names its
objects (core.common_io) is ever considered, nothing younger than the grace period is
touched, and an object stays while any row of its task in its run holds its URL, or while the
index cannot say what the rows hold (the REST API lists XComs without their values).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from xcomstore.core import common_io
from xcomstore.ops.gc import DEFAULT_GRACE, GcSummary, delete
from xcomstore.ops.liveness import LiveIndex, LiveXComs
from xcomstore.storage.location import Location

REASON = "common-io orphan"


def collect_common_io(
    location: Location,
    index: LiveIndex,
    summary: GcSummary,
    *,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    now: float | None = None,
    progress: Callable[[GcSummary], None] | None = None,
) -> GcSummary:
    """Delete (or with dry_run, count into `summary`) common-io's objects whose row is gone."""
    moment = time.time() if now is None else now
    runs: dict[tuple[str, str], LiveXComs] = {}
    for info in location.scan():
        found = common_io.parse_relpath(info.relpath) if info.kind == "object" else None
        if found is None:
            continue  # not common-io's: never touched (a user's file, another tool's)
        summary.scanned += 1
        if info.modified is None or moment - info.modified < grace:
            summary.spared_young += 1
        elif _orphaned(location.uri(info.relpath), found, index, runs):
            delete(location, info.relpath, info.size, REASON, dry_run, summary)
        if progress is not None and summary.scanned % 200 == 0:
            progress(summary)
    return summary


def _orphaned(
    uri: str,
    found: common_io.CommonIoObject,
    index: LiveIndex,
    runs: dict[tuple[str, str], LiveXComs],
) -> bool:
    run = (found.dag_id, found.run_id)
    if run not in runs:
        runs.clear()  # the store lists run by run: keep one run's XComs in memory at a time
        runs[run] = index.live(*run)
    held = [refs for (task, _, _), refs in runs[run].items() if task == found.task_id]
    return not any(refs is None or uri in refs for refs in held)
