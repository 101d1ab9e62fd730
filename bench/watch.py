"""Watching a case's process (time and memory limits) and how busy the machine was meanwhile.

Other work on the machine inflates timings; each case records how much CPU the rest of the
machine used while it ran, and the bench waits (a bounded time) for a quiet machine first.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import psutil

QUIET_PERCENT = 35.0  # the machine counts as quiet below this much CPU use (% of all cores)
MIN_AVAILABLE = 1536 * 2**20  # kill the case before the machine runs out of memory
_CORES = psutil.cpu_count() or 1


@dataclass
class Watched:
    killed: str | None = None
    peak_rss: int = 0
    child_cpu_seconds: float = 0.0
    machine_cpu_percent: float = 0.0  # the whole machine's CPU use, % of all cores
    bench_share: float = 0.0  # the bench's own part of it (this case, a sibling case, moto)

    @property
    def others_cpu_percent(self) -> float:
        """CPU used by processes outside the bench while the case ran, in % of all cores."""
        return max(0.0, self.machine_cpu_percent - self.bench_share)


def _busy_seconds() -> tuple[float, float]:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return sum(times) - idle, sum(times)


def _busy_percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else 0.0


def wait_for_quiet(max_wait: float) -> float:
    """Sleep until the machine's CPU use drops below QUIET_PERCENT, at most max_wait seconds."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        before = _busy_seconds()
        time.sleep(1.0)
        if _busy_percent(before, _busy_seconds()) < QUIET_PERCENT:
            break
    return time.monotonic() - started


def _tree(process: psutil.Process) -> tuple[int, float]:
    """RSS and CPU seconds of the process and its children."""
    try:
        members = [process, *process.children(recursive=True)]
        rss = sum(p.memory_info().rss for p in members)
        cpu = sum(sum(p.cpu_times()[:2]) for p in members)
    except psutil.Error:
        return 0, 0.0
    return rss, cpu


class _BenchCpu:
    """CPU seconds used by the bench's own processes (this one, cases, moto) over a window."""

    def __init__(self) -> None:
        self.root = psutil.Process()
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.sample(at_start=True)

    def sample(self, at_start: bool = False) -> None:
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                cpu = sum(proc.cpu_times()[:2])
            except psutil.Error:
                continue
            self.first.setdefault(proc.pid, cpu if at_start else 0.0)
            self.last[proc.pid] = cpu

    @property
    def seconds(self) -> float:
        return sum(cpu - self.first[pid] for pid, cpu in self.last.items())


def watch(child: subprocess.Popen[bytes], timeout: float, mem_limit: int) -> Watched:
    """Wait for the child; kill it past the timeout or the memory limit."""
    process, result = psutil.Process(child.pid), Watched()
    started, machine, bench = time.monotonic(), _busy_seconds(), _BenchCpu()
    while child.poll() is None:
        rss, cpu = _tree(process)
        bench.sample()
        result.peak_rss, result.child_cpu_seconds = max(result.peak_rss, rss), max(cpu, 0.0)
        if result.peak_rss > mem_limit:
            result.killed = f"killed by the bench: process RSS above {mem_limit / 2**30:.1f} GiB"
        elif psutil.virtual_memory().available < MIN_AVAILABLE:
            result.killed = f"killed by the bench: machine memory low at {rss / 2**30:.1f} GiB RSS"
        elif time.monotonic() - started > timeout:
            result.killed = f"killed by the bench: no result after {timeout:.0f} s"
        if result.killed:
            child.kill()
            child.wait()
            break
        time.sleep(0.1)
    wall = time.monotonic() - started
    result.machine_cpu_percent = _busy_percent(machine, _busy_seconds())
    result.bench_share = 100.0 * bench.seconds / (wall * _CORES) if wall else 0.0
    return result
