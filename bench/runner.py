"""Running each case in its own fresh subprocess, with a time and memory watchdog, and collecting
what it measured plus what it left in the store."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import taskside
from bench.airflow_home import backend_env, base_env, copy_home
from bench.cases import AIRFLOW_BACKENDS, Case
from bench.measure import one_line
from bench.s3server import MotoServer
from bench.taskside import STORE_URL_ENV
from bench.watch import wait_for_quiet, watch

#: Cases at least this big never run next to another case, whatever --jobs says.
HEAVY_BYTES = 100 * 10**6
_RUNNING: set[subprocess.Popen[bytes]] = set()
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit))\b:?(.*)$")


@dataclass
class Context:
    work_dir: Path
    log_dir: Path
    template: Path | None
    s3: MotoServer | None = None
    timeout: float = 1800.0
    mem_limit: int = 16 * 2**30
    keep: bool = False
    quiet_wait: float = 60.0


@dataclass
class Outcome:
    case: Case
    status: str = "ok"  # ok | fails | wrong
    error: str | None = None
    push: dict[str, Any] | None = None
    pull: dict[str, Any] | None = None
    nbytes: int = 0
    store_bytes: int = 0
    db_bytes: int = 0
    wall_seconds: float = 0.0
    peak_process_rss: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stored_bytes(self) -> int:
        return self.store_bytes + self.db_bytes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["case_id"] = self.case.case_id
        data["stored_bytes"] = self.stored_bytes
        return data


def _case_dir(ctx: Context, index: int, case: Case, attempt: int) -> Path:
    run = f"{index:03d}r{attempt}" if attempt else f"{index:03d}"
    name = re.sub(r"[^\w.-]+", "_", f"{run}-{case.store}-{case.case_id}")
    path = ctx.work_dir / name
    path.mkdir(parents=True)
    (path / "case.json").write_text(case.to_json())
    return path


def _environment(ctx: Context, case: Case, directory: Path) -> tuple[dict[str, str], str]:
    """The child's env and the store URL it writes to."""
    if case.backend in AIRFLOW_BACKENDS:
        assert ctx.template is not None
        env = base_env(copy_home(ctx.template, directory / "home"))
    else:
        env = base_env(directory / "home")
    if ctx.s3 is not None:
        store_url = ctx.s3.make_bucket(_bucket(directory))
        env.update(ctx.s3.env(directory))
    else:
        store_url = f"file://{directory / 'store'}"
    env.update(backend_env(case, store_url))
    env[STORE_URL_ENV] = store_url
    return env, store_url


def _bucket(directory: Path) -> str:
    return "bench-" + directory.name.split("-", 1)[0]


def _last_error(log: Path) -> str | None:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match:
            return f"{match.group(1)}:{match.group(2)}"[:300]
    return lines[-1][:300] if lines else None


def _db_bytes(home: Path) -> int:
    db = home / "airflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT length(CAST(value AS BLOB)) FROM xcom WHERE task_id = ? AND key = ?",
            (taskside.PUSH_TASK, taskside.XCOM_KEY),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _judge(outcome: Outcome, killed: str | None, returncode: int, log: Path) -> None:
    push, pull = outcome.push or {}, outcome.pull or {}
    outcome.nbytes = int((push.get("fingerprint") or {}).get("nbytes", 0))
    error = killed or push.get("error") or pull.get("error")
    if not error and not (outcome.push and outcome.pull):
        error = _last_error(log) or f"worker exited with code {returncode} and no result"
    if error:
        outcome.status, outcome.error = "fails", error
    elif not pull.get("extra", {}).get("intact"):
        outcome.status, outcome.error = "wrong", "pulled value differs from the pushed one"


def run_case(index: int, case: Case, ctx: Context, attempt: int = 0) -> Outcome:
    directory = _case_dir(ctx, index, case, attempt)
    log = ctx.log_dir / f"{directory.name}.log"
    outcome = Outcome(case)
    env, _ = _environment(ctx, case, directory)
    waited = wait_for_quiet(ctx.quiet_wait)
    started = time.perf_counter()
    with log.open("wb") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", str(directory)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
        _RUNNING.add(child)
        try:
            watched = watch(child, ctx.timeout, ctx.mem_limit)
        finally:
            _RUNNING.discard(child)
    outcome.wall_seconds = time.perf_counter() - started
    outcome.peak_process_rss = watched.peak_rss
    outcome.extra = {
        "quiet_wait_seconds": round(waited, 1),
        "machine_cpu_percent": round(watched.machine_cpu_percent, 1),
        "others_cpu_percent": round(watched.others_cpu_percent, 1),
    }
    outcome.push, outcome.pull = taskside.load("push", directory), taskside.load("pull", directory)
    _judge(outcome, watched.killed, child.returncode, log)
    _measure_storage(outcome, ctx, directory)
    if not ctx.keep:
        _clean(ctx, directory)
    return outcome


def _measure_storage(outcome: Outcome, ctx: Context, directory: Path) -> None:
    if ctx.s3 is not None:
        outcome.store_bytes = ctx.s3.bucket_bytes(_bucket(directory))
    else:
        outcome.store_bytes = taskside.dir_bytes(directory / "store")
    outcome.store_bytes -= int((outcome.push or {}).get("warmup_store_bytes", 0))
    outcome.db_bytes = _db_bytes(directory / "home")


def _clean(ctx: Context, directory: Path) -> None:
    if ctx.s3 is not None:
        ctx.s3.drop_bucket(_bucket(directory))
    shutil.rmtree(directory, ignore_errors=True)


def kill_running_cases() -> None:
    """Kill the cases' processes (on SIGTERM), so that the bench can clean up and stop."""
    for child in list(_RUNNING):
        child.kill()


def typical(runs: list[Outcome]) -> Outcome:
    """The run with the median push+pull time (all of them listed in its extra["runs"]); a
    failed run wins, so a flaky failure is never hidden behind a good run."""
    failed = [r for r in runs if r.status != "ok"]
    if failed or len(runs) == 1:
        return (failed or runs)[0]
    timed = sorted(runs, key=lambda r: _total_seconds(r))
    chosen = timed[len(timed) // 2]
    chosen.extra["runs"] = [[(r.push or {}).get("seconds"), (r.pull or {}).get("seconds")] for r in runs]
    return chosen


def _total_seconds(outcome: Outcome) -> float:
    return sum(float(record.get("seconds", 0.0)) for record in (outcome.push or {}, outcome.pull or {}))


def run_all(
    cases: list[Case], ctx: Context, jobs: int, report: Callable[[Outcome], None], repeat: int = 1
) -> list[Outcome]:
    """Run every case; light ones `jobs` at a time, heavy ones alone. Results in case order.

    Light cases run `repeat` times and report their median run: at 80 MB one run's times vary
    by 2× with the page cache's writeback, far more than between backends' medians."""
    indexed = list(enumerate(cases))
    light = [(i, c) for i, c in indexed if c.value.nominal_bytes < HEAVY_BYTES]
    heavy = [(i, c) for i, c in indexed if c.value.nominal_bytes >= HEAVY_BYTES]
    results: dict[int, Outcome] = {}
    lock = threading.Lock()

    # Waiting for a quiet machine makes no sense next to a sibling case.
    pooled = ctx if jobs <= 1 else replace(ctx, quiet_wait=0.0)

    def one(item: tuple[int, Case], context: Context = ctx) -> None:
        runs = repeat if item[1].value.nominal_bytes < HEAVY_BYTES else 1
        try:
            outcome = typical([run_case(item[0], item[1], context, attempt) for attempt in range(runs)])
        except Exception as exc:  # a problem of the bench itself must not lose the other cases
            outcome = Outcome(item[1], status="fails", error=f"bench: {one_line(exc)}")
        with lock:
            results[item[0]] = outcome
            report(outcome)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(lambda item: one(item, pooled), light))
    for item in heavy:
        one(item)
    return [results[i] for i, _ in indexed]
