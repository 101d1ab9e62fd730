"""What the UI needs from the store, on top of XComStore's public API.

Everything here reads the store only (no metadata DB), and never a whole value: listings use
directory listings and object headers, previews and downloads stream the payload.

The few things XComStore does not offer yet (a DAG and run listing that reads no headers, a
URI from an origin) are built here from `store.locations` and `xcomstore.layout`; they are
candidates for methods on XComStore. Every configured location is shown (`path`'s and every
route's), each XCom once: the copy in the first location, in the configured order, holding it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from xcomstore.core import layout
from xcomstore.core.store import XComStore
from xcomstore.errors import ForgedReferenceError, XComStoreError
from xcomstore.format.header import Header
from xcomstore.identity import Origin
from xcomstore.storage.headers import StoredObject
from xcomstore.storage.location import Location, ObjectInfo


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    objects: int
    stored_bytes: int
    modified: float | None


@dataclass(frozen=True)
class Entry:
    """One stored XCom as listed: its origin comes from its path, the rest from its header."""

    origin: Origin
    uri: str
    stored_bytes: int
    modified: float | None
    header: Header | None
    error: str | None = None


class StoreBrowser:
    """Read-only views of one store for the UI: DAGs, runs, XComs of a run, single objects."""

    def __init__(self, store: XComStore) -> None:
        self.store = store

    # -- listings --------------------------------------------------------------------------
    def dag_ids(self) -> list[str]:
        """The DAGs that have objects in the store: the top-level folders, no header read."""
        dags: set[str] = set()
        for location in self.store.locations:
            dags.update(self._dag_ids(location))
        return sorted(dags)

    def _dag_ids(self, location: Location) -> list[str]:
        try:
            found = location.retry.run(
                f"list {location.url}", lambda: location.fs.ls(location.root, detail=True)
            )
        except FileNotFoundError:
            return []
        names = [posixpath.basename(str(info["name"]).rstrip("/")) for info in found]
        folders = [n for n in names if n and not n.startswith(".")]
        return [d for d in (self._full_name(location, f, 0) for f in folders) if d is not None]

    def runs(self, dag_id: str) -> list[RunSummary]:
        """The runs of a DAG that have objects, with counts and sizes, newest first."""
        dag_segment = layout.encode_segment(dag_id)
        grouped: dict[str, dict[str, ObjectInfo]] = {}
        for location in self.store.locations:
            for info in location.list(layout.run_prefix(dag_id)):
                parts = info.relpath.split("/")
                # The listing is by prefix: keep only this DAG's own folder (not "<dag_id>x/...").
                if len(parts) == 5 and parts[0] == dag_segment:
                    grouped.setdefault(parts[1], {}).setdefault(info.relpath, info)
        runs = []
        for segment, infos in grouped.items():
            run_id = self._full_name(None, f"{dag_segment}/{segment}", 1)
            if run_id is not None:
                runs.append(_summary(run_id, list(infos.values())))
        return sorted(runs, key=lambda r: (r.modified or 0.0, r.run_id), reverse=True)

    def xcoms(
        self, dag_id: str, run_id: str, task_id: str | None = None, map_index: int | None = None
    ) -> list[Entry]:
        """The XComs stored for a run (or one task of it), described by their headers."""
        entries = []
        for location, obj in self._objects(dag_id, run_id):
            entry = self._entry(location, obj)
            if entry is None:
                continue  # a file that is no xcomstore object (its path is not an XCom's)
            origin = entry.origin
            if (origin.dag_id, origin.run_id) != (dag_id, run_id):
                continue  # another DAG or run whose name merely starts the same
            if task_id is not None and origin.task_id != task_id:
                continue
            if map_index is not None and origin.map_index != map_index:
                continue
            entries.append(entry)
        return sorted(entries, key=lambda e: (e.origin.task_id, e.origin.map_index, e.origin.key))

    def uri(self, origin: Origin) -> str:
        """Where the XCom `origin` is stored: computed from the origin, never taken from a user;
        in the first location holding it (the primary's URI when none does)."""
        relpath = layout.object_path(origin)
        holding = (loc for loc in self.store.locations if loc.exists(relpath))
        return next(holding, self.store.location).uri(relpath)

    # -- helpers ---------------------------------------------------------------------------
    def _objects(self, dag_id: str, run_id: str) -> list[tuple[Location, StoredObject]]:
        """A run's objects in every location, each XCom once (its first copy)."""
        found: dict[str, tuple[Location, StoredObject]] = {}
        for location in self.store.locations:
            for obj in self.store.list(dag_id, run_id, location=location):
                found.setdefault(location.relative(obj.uri), (location, obj))
        return list(found.values())

    def _entry(self, location: Location, obj: StoredObject) -> Entry | None:
        relpath = location.relative(obj.uri)
        header, error = obj.header, obj.error
        try:
            origin = layout.origin_of(relpath)
        except ForgedReferenceError:
            return None
        if header is not None and layout.object_path(header.origin) != relpath:
            claimed = header.origin
            header, error = None, f"the object's header says it holds XCom {claimed}"
        if header is not None:
            origin = header.origin  # full names, where the path may hold shortened ones
        return Entry(origin, obj.uri, obj.size, obj.modified, header, error)

    def _full_name(self, location: Location | None, folder: str, part: int) -> str | None:
        """The name a path segment stands for; a shortened segment is resolved from the header
        of one object below it, in `location` or else any (None if none can be read)."""
        segment = folder.split("/")[part]
        if "~" not in segment or segment == layout.EMPTY:
            return layout.decode_segment(segment)
        for where in [location] if location is not None else self.store.locations:
            for info in where.list(folder):
                try:
                    origin = self.store.head(where.uri(info.relpath)).origin
                except XComStoreError:
                    continue
                return origin.dag_id if part == 0 else origin.run_id
        return None


def _summary(run_id: str, infos: list[ObjectInfo]) -> RunSummary:
    times = [i.modified for i in infos if i.modified is not None]
    return RunSummary(run_id, len(infos), sum(i.size for i in infos), max(times) if times else None)
