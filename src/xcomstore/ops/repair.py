"""Repair: make every location hold a verified copy of every object, copying from a good one.

With several locations, a push succeeds once `required_copies` exist; a copy that failed, or
one that was damaged or deleted later, is restored here from the first location whose copy
verifies. Copies are made within a route's replicas only (core/routes.py): an object belongs to
the first route its XCom may take whose locations include every one holding it; one written
under routes since changed (no such route) is repaired among the locations holding it.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xcomstore.core import layout, table_reads
from xcomstore.core.routes import UNKNOWN_TEAM
from xcomstore.core.store import XComStore
from xcomstore.errors import XComStoreError
from xcomstore.format import container
from xcomstore.format.encryption import Keyring
from xcomstore.storage.location import Location


@dataclass
class RepairSummary:
    dry_run: bool
    checked: int = 0
    copied: list[dict[str, str]] = field(default_factory=list)  # {"to", "from", "reason"}
    unrecoverable: list[dict[str, str]] = field(default_factory=list)  # {"object", "reason"}
    # A good copy exists but could not be written where it is missing (a refused or unsafe
    # target): reported, and the run goes on with the other objects.
    failed: list[dict[str, str]] = field(default_factory=list)  # {"to", "from", "reason"}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # the fields, as they are named


def repair(
    store: XComStore, *, dry_run: bool = False, progress: Callable[[RepairSummary], None] | None = None
) -> RepairSummary:
    summary = RepairSummary(dry_run)
    held = {location: {info.relpath for info in location.list()} for location in store.locations}
    for relpath in sorted(set().union(*held.values())):
        summary.checked += 1
        holding = [location for location, relpaths in held.items() if relpath in relpaths]
        replicas = _replicas_of(store, relpath, holding)
        _repair_one(replicas, relpath, store.settings.encryption, dry_run, summary)
        if progress is not None and summary.checked % 100 == 0:
            progress(summary)
    return summary


def _replicas_of(store: XComStore, relpath: str, holding: list[Location]) -> tuple[Location, ...]:
    """The locations that should hold `relpath`: its route's (see the module docstring)."""
    try:
        origin = layout.origin_of(relpath)
    except XComStoreError:  # not a path xcomstore writes: only what holds it is checked
        return tuple(holding)
    urls = {location.url for location in holding}
    for route in store.routing.possible(origin, UNKNOWN_TEAM):
        if urls <= set(route.urls):
            return store.replicas(route).locations
    return tuple(holding)


def _repair_one(
    locations: tuple[Location, ...], relpath: str, keyring: Keyring, dry_run: bool, summary: RepairSummary
) -> None:
    checks = {location: _check(location, relpath, keyring) for location in locations}
    good = next((loc for loc, (digest, _) in checks.items() if digest is not None), None)
    if good is None:
        reasons = "; ".join(f"{loc.url}: {why}" for loc, (_, why) in checks.items())
        summary.unrecoverable.append({"object": relpath, "reason": reasons})
        return
    good_digest = checks[good][0]
    for location, (digest, why) in checks.items():
        if digest == good_digest:
            continue
        reason = why if digest is None else "differs from the copy in " + good.url
        move = {"to": location.uri(relpath), "from": good.uri(relpath), "reason": reason}
        if not dry_run:
            try:
                _copy(good, location, relpath)
            except (XComStoreError, OSError) as exc:
                summary.failed.append({**move, "reason": f"{type(exc).__name__}: {exc}"})
                continue
        summary.copied.append(move)


def _check(location: Location, relpath: str, keyring: Keyring) -> tuple[bytes | None, str]:
    """The copy's verified checksum, or None and why it is unusable."""
    try:
        with location.reader(relpath) as (stream, size):
            obj = container.open_object(stream, size)
            table_reads.verify_copy(location, relpath, obj, keyring)
            return obj.seal.digest, "ok"
    except XComStoreError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _copy(source: Location, target: Location, relpath: str) -> None:
    with source.reader(relpath) as (stream, _), target.writer(relpath) as sink:
        shutil.copyfileobj(stream, sink, 8 << 20)
