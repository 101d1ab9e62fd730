"""`xcomstore migrate --from-common-io`: rewrite the XComs common-io wrote as xcomstore's.

For each XCom row whose value is a path common-io wrote for that XCom (core.common_io), in
this order: read common-io's object; push the value through XComStore (the same Origin, so
the same object path and checks as a task's push); replace the row's value with what the push
returns, in one transaction that first checks the row still holds the path; then delete
common-io's object (unless kept). A crash at any point leaves each row either with its path
and common-io's object, or with its reference and xcomstore's object; a rerun skips rows that
hold references and finishes the others. What a crash can leave behind is an object no row
names (xcomstore's, written before the row changed, or common-io's, not deleted yet), which
`xcomstore gc` collects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from xcomstore.core.common_io import CommonIoObject
from xcomstore.core.reference import is_reference
from xcomstore.core.store import XComStore
from xcomstore.errors import XComStoreError
from xcomstore.identity import Origin, Wanted


@dataclass(frozen=True)
class XComRow:
    """One row of Airflow's xcom table: its XCom, and its value as the DB holds it."""

    origin: Origin
    value: Any  # as Airflow reads it
    raw: Any = None  # as the DB holds it: what replace() checks is still there


class XComRows(Protocol):
    """The metadata DB's XCom rows (ops.xcom_rows for the real one)."""

    def rows(self, dag_id: str | None = None) -> Iterable[XComRow]:
        """The rows (of one DAG) whose value is a string or a reference: the others cannot be
        common-io's paths nor done already."""

    def replace(self, row: XComRow, value: Any) -> bool:
        """In one transaction: if the row still holds `row.value`, make it hold `value`; False
        (nothing changed) if the row is gone or holds something else now."""


class CommonIoSource(Protocol):
    """common-io's objects (airflow.common_io.CommonIoObjects: it decodes as Airflow does)."""

    def find(self, stored: Any, wanted: Wanted | None) -> CommonIoObject | None: ...
    def read(self, obj: CommonIoObject, xcom: Wanted | Origin) -> Any: ...
    def delete(self, obj: CommonIoObject) -> bool: ...


@dataclass
class MigrateSummary:
    dry_run: bool
    scanned: int = 0
    migrated: list[str] = field(default_factory=list)  # "<xcom> <common-io uri> -> <what the row holds>"
    already: int = 0  # rows holding an xcomstore reference: done before
    other: int = 0  # strings that are not common-io's path for their XCom: left as they are
    changed: list[str] = field(default_factory=list)  # rows that changed under us: left as they are
    errors: list[str] = field(default_factory=list)
    deleted: int = 0  # common-io objects deleted after their row was rewritten

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "migrated": self.migrated,
            "already_references": self.already,
            "other_strings": self.other,
            "changed_meanwhile": self.changed,
            "errors": self.errors,
            "common_io_objects_deleted": self.deleted,
        }


def migrate(
    store: XComStore,
    source: CommonIoSource,
    rows: XComRows,
    *,
    dag_id: str | None = None,
    dry_run: bool = False,
    keep: bool = False,
    progress: Callable[[MigrateSummary], None] | None = None,
) -> MigrateSummary:
    """Rewrite every live common-io XCom (of `dag_id`) as an xcomstore one."""
    summary = MigrateSummary(dry_run)
    for row in rows.rows(dag_id):
        summary.scanned += 1
        _one(store, source, rows, row, summary, dry_run=dry_run, keep=keep)
        if progress is not None and summary.scanned % 50 == 0:
            progress(summary)
    return summary


def _one(
    store: XComStore,
    source: CommonIoSource,
    rows: XComRows,
    row: XComRow,
    summary: MigrateSummary,
    *,
    dry_run: bool,
    keep: bool,
) -> None:
    origin = row.origin
    if is_reference(row.value):
        summary.already += 1
        return
    # trust boundary: the row's string is followed only if it is exactly common-io's path for
    # this very XCom; find() says so or returns None.
    found = source.find(row.value, origin.wanted())
    if found is None:
        summary.other += 1
        return
    what = f"{origin} {found.uri}"
    if dry_run:
        summary.migrated.append(what)
        return
    try:
        stored = store.push(source.read(found, origin), origin)
        if not rows.replace(row, stored):
            summary.changed.append(what)
            return
        summary.migrated.append(f"{what} -> {_shown(stored)}")
        if not keep:
            summary.deleted += int(source.delete(found))
    except XComStoreError as exc:
        summary.errors.append(f"{what}: {exc}")


def _shown(stored: Any) -> str:
    return str(stored["uri"]) if is_reference(stored) else "an inline value"
