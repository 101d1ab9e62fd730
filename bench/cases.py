"""What is measured: the values, the backends, and the (backend, value, compression) cases."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["int", "json", "pandas", "polars", "numpy"]
Store = Literal["file", "s3"]

#: The XCom backends that run inside a real DAG, and the direct write/read yardstick.
AIRFLOW_BACKENDS = ("default", "common-io", "xcomstore")
YARDSTICK = "yardstick"
BACKENDS = (*AIRFLOW_BACKENDS, YARDSTICK)
COMPRESSIONS = ("none", "zstd")

_MB = 10**6


@dataclass(frozen=True)
class ValueSpec:
    """A value to push: its kind and size. `rows` is the row count (frames, arrays) or the JSON size."""

    kind: Kind
    rows: int
    label: str

    @property
    def nominal_bytes(self) -> int:
        if self.kind == "int":
            return 8
        if self.kind == "json":
            return self.rows
        return self.rows * 10 * 8  # 10 float64 columns


@dataclass(frozen=True)
class Case:
    backend: str
    value: ValueSpec
    compression: str
    store: Store = "file"

    @property
    def case_id(self) -> str:
        return f"{self.backend}/{self.value.label}/{self.compression}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        raw = json.loads(text)
        return cls(
            backend=raw["backend"],
            value=ValueSpec(**raw["value"]),
            compression=raw["compression"],
            store=raw["store"],
        )

    @classmethod
    def load(cls, path: Path) -> Case:
        return cls.from_json(path.read_text())


def _frames(rows: int, label: str) -> list[ValueSpec]:
    return [
        ValueSpec("pandas", rows, f"pandas-{label}"),
        ValueSpec("polars", rows, f"polars-{label}"),
    ]


def value_specs(quick: bool) -> list[ValueSpec]:
    """Full: int, 10 MB JSON, 80 MB and 800 MB frames and arrays. Quick: 1 MB JSON, 8 MB rest."""
    if quick:
        return [
            ValueSpec("int", 1, "int"),
            ValueSpec("json", 1 * _MB, "json-1MB"),
            *_frames(100_000, "8MB"),
            ValueSpec("numpy", 100_000, "numpy-8MB"),
        ]
    return [
        ValueSpec("int", 1, "int"),
        ValueSpec("json", 10 * _MB, "json-10MB"),
        *_frames(1_000_000, "80MB"),
        *_frames(10_000_000, "800MB"),
        ValueSpec("numpy", 1_000_000, "numpy-80MB"),
        ValueSpec("numpy", 10_000_000, "numpy-800MB"),
    ]


def _compressions(backend: str, value: ValueSpec, quick: bool) -> tuple[str, ...]:
    # The default backend has no compression; an int is never offloaded, so compression is moot.
    # --quick keeps common-io uncompressed only (its default), to stay near two minutes.
    if backend == "default" or value.kind == "int" or (quick and backend == "common-io"):
        return ("none",)
    return COMPRESSIONS


def all_cases(quick: bool, store: Store) -> list[Case]:
    """Every case, grouped by value so that each value's backends sit side by side."""
    backends = [b for b in BACKENDS if not (store == "s3" and b == "default")]
    return [
        Case(backend, value, compression, store)
        for value in value_specs(quick)
        for backend in backends
        for compression in _compressions(backend, value, quick)
    ]


def matches(case: Case, pattern: str) -> bool:
    """fnmatch on "backend/value/compression"; a pattern without "/" may match any one part."""
    if "/" in pattern:
        return fnmatch.fnmatchcase(case.case_id, pattern)
    parts = (case.backend, case.value.label, case.compression)
    return any(fnmatch.fnmatchcase(part, pattern) for part in parts)


def select(cases: list[Case], patterns: list[str]) -> list[Case]:
    """Cases matching any pattern (all cases when there are no patterns)."""
    if not patterns:
        return cases
    return [c for c in cases if any(matches(c, p) for p in patterns)]
