"""The bodies of the benchmark DAG's two tasks: push a value, then pull and verify it.

Both run inside the task process (dag.test() runs tasks in the calling process). Only the XCom
operation itself is inside the measured block: value creation and verification are outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import values
from bench.cases import Case, ValueSpec
from bench.measure import Measurement, measured

CASE_DIR_ENV = "BENCH_CASE_DIR"
STORE_URL_ENV = "BENCH_STORE_URL"
PUSH_TASK = "push"
XCOM_KEY = "return_value"
WARMUP_KEY = "warmup"
# Offloaded by every backend that offloads (over both thresholds): the store's filesystem and
# client get set up here, and the libraries the value's kind needs get imported (pyarrow for a
# polars frame), as the yardstick's are before its timing. Its time is kept apart.
WARMUP_STRING = "w" * (96 << 10)
WARMUP_ROWS = 2000  # 160 KB of float64 frame or array: over both thresholds


def warmup_value(spec: ValueSpec) -> Any:
    """A small value of the same kind as the measured one (a string for ints and JSON)."""
    if spec.kind in ("int", "json"):
        return WARMUP_STRING
    return values.make(replace(spec, rows=WARMUP_ROWS))


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
    record["warmup_seconds"] = _warm_up(lambda: ti.xcom_push(WARMUP_KEY, warmup_value(case.value)))
    record["warmup_store_bytes"] = store_bytes()  # not counted as the value's stored bytes
    m = Measurement()
    try:
        with measured() as m:
            ti.xcom_push(XCOM_KEY, value)
    finally:
        save("push", {**record, **m.to_dict()})


def pull(ti: Any) -> None:
    """Time ti.xcom_pull (DB row + store read + deserialize), then compare fingerprints."""
    warmup = _warm_up(lambda: ti.xcom_pull(task_ids=PUSH_TASK, key=WARMUP_KEY))
    m = Measurement()
    pulled: Any = None
    try:
        with measured() as m:
            pulled = ti.xcom_pull(task_ids=PUSH_TASK, key=XCOM_KEY)
    finally:
        save("pull", m.to_dict())
    pushed = load("push") or {}
    got = values.fingerprint(pulled)
    m.extra = {"warmup_seconds": warmup, "fingerprint": got, "intact": got == pushed.get("fingerprint")}
    save("pull", m.to_dict())
    if not m.extra["intact"]:
        raise ValueError(f"pulled value differs: {got} != {pushed.get('fingerprint')}")


def _warm_up(operation: Any) -> float:
    """Seconds the warm-up took. A backend that cannot store the value's kind fails here too;
    the measured push then fails with the error that is reported."""
    started = time.perf_counter()
    with contextlib.suppress(Exception):
        operation()
    return time.perf_counter() - started


def store_bytes() -> int:
    """Bytes in the case's store: its folder, or its S3 bucket."""
    url = os.environ[STORE_URL_ENV]
    if url.startswith("file://"):
        return dir_bytes(Path(url.removeprefix("file://")))
    import s3fs

    from bench.s3server import bucket_bytes

    fs = s3fs.S3FileSystem(endpoint_url=os.environ["BENCH_S3_ENDPOINT"])
    return bucket_bytes(fs, url.removeprefix("s3://").split("@")[-1].split("/")[0])


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
