"""The bodies of the benchmark DAG's two tasks: push a value, then pull and verify it.

Both run inside the task process (dag.test() runs tasks in the calling process). Only the XCom
operation itself is inside the measured block: value creation and verification are outside.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bench import values
from bench.cases import Case
from bench.measure import Measurement, measured

CASE_DIR_ENV = "BENCH_CASE_DIR"
PUSH_TASK = "push"
XCOM_KEY = "return_value"
WARMUP_KEY = "warmup"


def case_dir() -> Path:
    return Path(os.environ[CASE_DIR_ENV])


def save(stage: str, data: dict[str, Any], directory: Path | None = None) -> None:
    """Write one stage's record (push.json, pull.json) into the case directory."""
    target = (directory or case_dir()) / f"{stage}.json"
    target.write_text(json.dumps(data, indent=1))


def load(stage: str, directory: Path | None = None) -> dict[str, Any] | None:
    path = (directory or case_dir()) / f"{stage}.json"
    return json.loads(path.read_text()) if path.exists() else None


def push(ti: Any) -> None:
    """Build the value, then time ti.xcom_push of it (serialize + store write + DB row)."""
    case = Case.load(case_dir() / "case.json")
    started = time.perf_counter()
    value = values.make(case.value)
    record: dict[str, Any] = {"make_seconds": time.perf_counter() - started}
    record["fingerprint"] = values.fingerprint(value)
    ti.xcom_push(WARMUP_KEY, 0)  # first-request costs of dag.test's in-process API, not timed
    m = Measurement()
    try:
        with measured() as m:
            ti.xcom_push(XCOM_KEY, value)
    finally:
        save("push", {**record, **m.to_dict()})


def pull(ti: Any) -> None:
    """Time ti.xcom_pull (DB row + store read + deserialize), then compare fingerprints."""
    ti.xcom_pull(task_ids=PUSH_TASK, key=WARMUP_KEY)
    m = Measurement()
    pulled: Any = None
    try:
        with measured() as m:
            pulled = ti.xcom_pull(task_ids=PUSH_TASK, key=XCOM_KEY)
    finally:
        save("pull", m.to_dict())
    pushed = load("push") or {}
    got = values.fingerprint(pulled)
    m.extra = {"fingerprint": got, "intact": got == pushed.get("fingerprint")}
    save("pull", m.to_dict())
    if not m.extra["intact"]:
        raise ValueError(f"pulled value differs: {got} != {pushed.get('fingerprint')}")
