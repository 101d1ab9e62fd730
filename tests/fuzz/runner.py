"""Long-lived worker processes that decode cases, and the verdict on what each case did.

A worker (tests/fuzz/worker.py) takes case after case from its stdin, so hundreds of cases run
in seconds; each runs under a memory limit and a time limit per target. A worker that dies (a
signal: segfault, abort) or hangs is recorded against the case and target it was on, killed if
need be, and started again for the next case. Its stderr (faulthandler's stack of a crash) is
kept in a log, whose last lines go with the finding.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fuzz import mutate
from tests.fuzz.seeds import Seed

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("read", "pull", "project", "preview", "download")
MIB = 1 << 20
MEMORY_SLACK = 96 * MIB  # a decode's own working memory (Arrow pools, pandas blocks) beside its value
PREVIEW_OUTPUT = 1 * MIB  # a preview's JSON is a page's worth of text, whatever the object says
STARTUP_TIMEOUT = 180.0  # importing pyarrow, pandas and polars on a busy machine


@dataclass(frozen=True)
class Case:
    seed: str
    mutations: tuple[mutate.Mutation, ...]

    def replay(self) -> str:
        """The case as `python -m tests.fuzz --replay` takes it."""
        return json.dumps([self.seed, [list(m) for m in self.mutations]])


@dataclass(frozen=True)
class Finding:
    case: Case
    target: str
    kind: str  # "signal SIGSEGV", "exit 1", "timeout", "error", "memory", "oversize"
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} in {self.target}: {self.detail}\n    replay: {self.case.replay()}"

    @property
    def klass(self) -> str:
        """What kind of fault this is, for grouping: kind, target, codec and exception type."""
        codec = self.case.seed.split("-")[0]
        if self.kind.startswith(("signal", "exit")):  # where it crashed: the innermost frame
            where = self.detail.split(" | ")[1] if " | " in self.detail else self.detail
            return f"{self.kind} / {self.target} / {codec} / {where[:80]}"
        return f"{self.kind} / {self.target} / {codec} / {self.detail.split(':')[0][:60]}"


@dataclass
class Tally:
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "preview ok", "read refused", ...
    findings: list[Finding] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)  # "read ObjectFormatError", ...
    restarts: int = 0  # after a crash or a hang
    recycled: int = 0  # replaced after a case that left it bloated

    def summary(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.cases} cases, {len(self.findings)} findings, {self.restarts} worker restarts, "
            f"{self.recycled} recycled; {outcomes}"
        )


class _Died(Exception):
    pass


class Worker:
    """One worker process, restarted whenever it dies or hangs."""

    def __init__(self, timeout: float, memory: int, log: Path) -> None:
        self.timeout = timeout
        self.memory = memory
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _start(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "XCOMSTORE_FUZZ_MEMORY": str(self.memory),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        }  # this checkout's code
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.fuzz.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                env=env,
                start_new_session=True,  # killed as a group: nothing it started outlives it
            )
        self._process, self._buffer = process, b""
        self._line(time.monotonic() + STARTUP_TIMEOUT)  # {"ready": pid}
        return process

    def run(self, case_id: int, seed: Seed, data: bytes, tally: Tally, case: Case) -> None:
        """Decode one case through every target; what went wrong goes to `tally`."""
        process = self._process if self._process and self._process.poll() is None else self._start()
        reference = {**seed.reference, "checksum": mutate.label(data), "stored_bytes": len(data)}
        message = {"id": case_id, "relpath": seed.relpath, "size": len(data), "reference": reference}
        message["targets"] = list(TARGETS)
        target = "(sending)"
        log_start = self.log.stat().st_size
        try:
            assert process.stdin is not None
            process.stdin.write(json.dumps(message).encode() + b"\n" + data)
            process.stdin.flush()
            while True:
                line = self._line(time.monotonic() + self.timeout)
                if line.get("done"):
                    if int(line.get("grown", 0)) > self.memory // 2:
                        self.stop()  # a big case left it bloated: the next case gets a fresh one
                        tally.recycled += 1
                    return
                if "start" in line:
                    target = line["start"]
                    continue
                self._judge(line, seed, tally, case)
        except TimeoutError:
            self.stop()
            tally.restarts += 1
            tally.findings.append(Finding(case, target, "timeout", f"no answer in {self.timeout:.0f}s"))
            tally.outcomes[f"{target} timeout"] += 1
        except (_Died, BrokenPipeError):
            code = process.wait()
            self._process = None
            tally.restarts += 1
            kind = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            tally.findings.append(Finding(case, target, kind, self._log_tail(log_start)))
            tally.outcomes[f"{target} crash"] += 1

    def _judge(self, line: dict[str, Any], seed: Seed, tally: Tally, case: Case) -> None:
        target, outcome, peak = line["target"], line["outcome"], int(line["peak"])
        tally.outcomes[f"{target} {outcome}"] += 1
        if outcome == "refused":
            error = line["detail"].partition(":")[0]
            if "differs from the reference" in line["detail"]:  # a rewritten header, as it should
                error += " (header vs reference)"
            tally.refusals[f"{target} {error}"] += 1
        if outcome in ("error", "memory"):
            tally.findings.append(Finding(case, target, outcome, line["detail"]))
        limit = 2 * seed.legit_bytes + MEMORY_SLACK
        if peak > limit:
            detail = f"peak {peak / MIB:.0f} MiB, over {limit / MIB:.0f} MiB ({outcome}: {line['detail']})"
            tally.findings.append(Finding(case, target, "memory", detail))
        if target == "preview" and int(line["output"]) > PREVIEW_OUTPUT:
            detail = f"a preview of {int(line['output']) / MIB:.1f} MiB of JSON"
            tally.findings.append(Finding(case, target, "oversize", detail))

    def _line(self, deadline: float) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise _Died
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)  # type: ignore[no-any-return]

    def _log_tail(self, start: int) -> str:
        """The crash as faulthandler wrote it: the error, and the innermost frames of the thread
        that crashed (the first ones it lists)."""
        with open(self.log, "rb") as log:
            log.seek(start)
            lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
        error = next((line for line in lines if line.startswith("Fatal Python error")), "")
        # The crashing thread is "Current thread"; a crash in a thread Python does not know
        # (Arrow's, polars') lists the main thread first, as "Thread 0x…".
        starts = ("Current thread", "Thread 0x")
        current = next((i for i, line in enumerate(lines) if line.startswith(starts)), None)
        if current is None:
            return " | ".join(lines[-6:])[:600] or "(no output)"
        frames = [line for line in lines[current + 1 :] if line.startswith("File ")][:4]
        return " | ".join([error, *(_short(frame) for frame in frames)])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
        process.wait()


def _short(frame: str) -> str:
    """'File "/…/site-packages/pyarrow/parquet/core.py", line 1225 in write_table' as
    'pyarrow/parquet/core.py:1225 write_table'."""
    path, _, rest = frame.removeprefix('File "').partition('", line ')
    for marker in ("site-packages/", "/src/", "/tests/"):
        if marker in path:
            path = path.rpartition(marker)[2]
            break
    line, _, function = rest.partition(" in ")
    return f"{path}:{line} {function}"


class Pool:
    """`workers` Workers, each running its share of a batch of cases in parallel."""

    def __init__(
        self, seeds: list[Seed], workers: int = 2, timeout: float = 20.0, memory: int = 2 << 30
    ) -> None:
        self.seeds = {seed.name: seed for seed in seeds}
        self.logs = Path(tempfile.mkdtemp(prefix="xcomstore-fuzz-logs-"))
        self.workers = [Worker(timeout, memory, self.logs / f"worker-{n}.log") for n in range(workers)]
        self.tally = Tally()
        self._lock = threading.Lock()
        self._next = 0

    def run(self, cases: list[Case]) -> None:
        pending: queue.SimpleQueue[Case] = queue.SimpleQueue()
        for case in cases:
            pending.put(case)
        threads = [threading.Thread(target=self._drain, args=(w, pending)) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _drain(self, worker: Worker, pending: queue.SimpleQueue[Case]) -> None:
        while True:
            try:
                case = pending.get_nowait()
            except queue.Empty:
                return
            seed = self.seeds[case.seed]
            local = Tally()
            try:
                data = mutate.apply(seed.data, [tuple(m) for m in case.mutations])
            except Exception as exc:  # the harness's own fault: reported, never hidden
                with self._lock:
                    self.tally.findings.append(Finding(case, "(mutate)", "harness", repr(exc)))
                continue
            with self._lock:
                self._next += 1
                case_id = self._next
            worker.run(case_id, seed, data, local, case)
            with self._lock:
                self.tally.cases += 1
                self.tally.outcomes.update(local.outcomes)
                self.tally.refusals.update(local.refusals)
                self.tally.findings.extend(local.findings)
                self.tally.restarts += local.restarts
                self.tally.recycled += local.recycled

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
