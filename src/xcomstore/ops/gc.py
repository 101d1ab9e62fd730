"""Garbage collection: delete expired objects and orphans, sparing anything younger than a grace period.

Airflow calls the backend's purge only when a task is re-run. Deleting a DAG run, `airflow db
clean`, and deleting XComs in the UI or REST API drop the rows and leave the objects behind;
this finds them from the store side, checking each DAG run's XComs in the metadata DB once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xcomstore.core.store import XComStore
from xcomstore.ops.liveness import LiveIndex, LiveXComs
from xcomstore.storage.headers import StoredObject, describe
from xcomstore.storage.location import Location, ObjectInfo

DEFAULT_GRACE = 3600.0  # seconds: a push in flight writes its object before its row


@dataclass
class GcSummary:
    dry_run: bool
    scanned: int = 0
    spared_young: int = 0
    temporary_spared_young: int = 0  # temporary files that may belong to a write in flight
    removed: dict[str, list[int]] = field(default_factory=dict)  # reason → [objects, bytes]
    unreadable: list[str] = field(default_factory=list)  # kept: "<uri>: <why>"
    # Expired by a header nothing authenticates (format versions 1 and 2): kept unless the
    # metadata DB shows its XCom gone.
    unauthenticated_expiry: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not regular files, never touched: "<uri>: <kind>"
    errors: list[str] = field(default_factory=list)
    folders_removed: int = 0  # left empty by what was deleted (file stores; object stores have none)

    def count(self, reason: str, size: int) -> None:
        entry = self.removed.setdefault(reason, [0, 0])
        entry[0] += 1
        entry[1] += size

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "spared_young": self.spared_young,
            "temporary_spared_young": self.temporary_spared_young,
            "removed": {r: {"objects": n, "bytes": b} for r, (n, b) in self.removed.items()},
            "unreadable_kept": self.unreadable,
            "unauthenticated_expiry_kept": self.unauthenticated_expiry,
            "skipped": self.skipped,
            "errors": self.errors,
            "folders_removed": self.folders_removed,
        }


def collect(
    store: XComStore,
    index: LiveIndex | None,
    *,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    now: float | None = None,
    progress: Callable[[GcSummary], None] | None = None,
) -> GcSummary:
    """Delete (or with dry_run, count) expired objects, and orphans when `index` is given."""
    summary = GcSummary(dry_run)
    moment = time.time() if now is None else now
    runs: dict[tuple[str, str], LiveXComs] = {}
    for location in store.locations:
        for info in location.scan():
            if info.kind != "object":
                _other(location, info, moment, grace, dry_run, summary)
                continue
            obj = describe(location, info, authenticate=True)
            summary.scanned += 1
            reason = _reason(obj, index, runs, moment, grace, summary)
            if reason is not None:
                _remove(store, obj, reason, dry_run, summary)
            if progress is not None and summary.scanned % 200 == 0:
                progress(summary)
    return summary


def _other(
    location: Location, info: ObjectInfo, now: float, grace: float, dry_run: bool, summary: GcSummary
) -> None:
    """What a listing found besides objects: a symlink, FIFO or folder is reported, never
    touched; the temporary file of an interrupted write goes once older than the grace period
    (a younger one may be a push still writing)."""
    if info.kind == "skipped":
        summary.skipped.append(f"{location.uri(info.relpath)}: {info.reason}")
        return
    if info.modified is None or now - info.modified < grace:
        summary.temporary_spared_young += 1
        return
    delete(location, info.relpath, info.size, "temporary", dry_run, summary)


def _reason(
    obj: StoredObject,
    index: LiveIndex | None,
    runs: dict[tuple[str, str], LiveXComs],
    now: float,
    grace: float,
    summary: GcSummary,
) -> str | None:
    """Why `obj` should go, or None to keep it."""
    born = obj.modified if obj.modified is not None else _created(obj)
    if born is None or now - born < grace:
        summary.spared_young += 1
        return None
    if obj.header is None:
        # Unreadable: maybe damaged, maybe from a newer xcomstore, maybe a failed read. Never
        # delete what cannot be identified; `xcomstore verify` reports it.
        summary.unreadable.append(f"{obj.uri}: {obj.error}")
        return None
    if obj.header.expires and _timestamp(obj.header.expires) <= now:
        if obj.authenticated:
            return "expired"
        # trust boundary: an older object's header is not sealed, so its `expires` may have
        # been written by anyone with access to the store; only the XCom's absence counts.
        if index is None:
            summary.unauthenticated_expiry.append(obj.uri)
            return None
    if index is None:
        return None
    origin = obj.header.origin
    run = (origin.dag_id, origin.run_id)
    if run not in runs:
        runs.clear()  # the store lists run by run: keep one run's XComs in memory at a time
        runs[run] = index.live(*run)
    refs = runs[run].get((origin.task_id, origin.map_index, origin.key), frozenset())
    if refs is None or obj.uri in refs:
        return None
    return "orphan"


def _remove(store: XComStore, obj: StoredObject, reason: str, dry_run: bool, summary: GcSummary) -> None:
    try:
        location, relpath = store.locate(obj.uri)
    except Exception as exc:
        summary.errors.append(f"{obj.uri}: {exc}")
        return
    delete(location, relpath, obj.size, reason, dry_run, summary)


def delete(
    location: Location, relpath: str, size: int, reason: str, dry_run: bool, summary: GcSummary
) -> None:
    """Delete one object (unless a dry run) and count it under `reason`; a failure is reported."""
    if not dry_run:
        try:
            location.delete(relpath)
            # A run's folders would otherwise stay forever, empty: gc is what removes runs.
            summary.folders_removed += location.remove_empty_folders(relpath)
        except Exception as exc:
            summary.errors.append(f"{location.uri(relpath)}: {exc}")
            return
    summary.count(reason, size)


def _created(obj: StoredObject) -> float | None:
    return _timestamp(obj.header.created) if obj.header else None


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
