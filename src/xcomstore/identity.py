"""Which XCom a thing is about: the identity every layer names in its objects and errors.

An `Origin` is the full identity of one XCom (what an object holds, where its path goes); a
`Wanted` is what a reader asked for, with the fields it leaves open. Both are keyword-only, in
one field order (dag, run, task, map index, key), so a call site can never swap two strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xcomstore.errors import ObjectFormatError

_TEXT_FIELDS = ("dag_id", "run_id", "task_id", "key")


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Which XCom a value belongs to."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str

    def __str__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}/{self.key}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # the fields in their order: headers keep their bytes

    def wanted(self) -> Wanted:
        """This very XCom, as a reader asks for it."""
        return Wanted(**dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Any) -> Origin:
        """An origin read from an object's header (untrusted: every field is type-checked)."""
        if not isinstance(data, Mapping):
            raise ObjectFormatError("header origin is not an object")
        missing = [name for name in (*_TEXT_FIELDS, "map_index") if name not in data]
        if missing:
            raise ObjectFormatError(f"header origin lacks {missing[0]!r}")
        if (
            not all(isinstance(data[name], str) for name in _TEXT_FIELDS)
            or type(data["map_index"]) is not int
        ):
            raise ObjectFormatError("header origin has fields of the wrong type")
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            task_id=data["task_id"],
            map_index=data["map_index"],
            key=data["key"],
        )


@dataclass(frozen=True, kw_only=True)
class Wanted:
    """The XCom a task asked for, as far as it is known: a reference read for it must be its own."""

    dag_id: str
    run_id: str | None = None  # None: prior runs may answer (include_prior_dates)
    task_id: str
    map_index: int | None = None  # None: any map index (a read of all of them)
    key: str

    def __str__(self) -> str:
        index = "" if self.map_index is None or self.map_index < 0 else f"[{self.map_index}]"
        return f"{self.dag_id}/{self.run_id or '*'}/{self.task_id}{index}/{self.key}"
