"""Wall time and peak RSS growth of one operation, measured inside the process that performs it.

Peak RSS comes from two sources and the larger wins:
- the kernel's high-water mark (VmHWM), reset just before the operation through
  /proc/self/clear_refs, which catches every peak even while a C call holds the GIL;
- a background thread sampling /proc/self/statm every 5 ms (the brief's method; it can miss
  short peaks while the GIL is held, which is why the high-water mark is read too).
"""

from __future__ import annotations

import gc
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")
_HWM_RE = re.compile(rb"VmHWM:\s+(\d+) kB")
SAMPLE_SECONDS = 0.005


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _reset_high_water_mark() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _high_water_mark() -> int:
    with open("/proc/self/status", "rb") as status:
        match = _HWM_RE.search(status.read())
    return int(match.group(1)) * 1024 if match else 0


class RssSampler(threading.Thread):
    """Records the largest RSS seen until stop()."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.interval = interval
        self.peak = rss_bytes()
        self.samples = 0
        self._stop_event = threading.Event()
        self._fd = os.open("/proc/self/statm", os.O_RDONLY)

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                self._sample()
                self._stop_event.wait(self.interval)
        finally:
            os.close(self._fd)

    def _sample(self) -> None:
        rss = int(os.pread(self._fd, 128, 0).split()[1]) * _PAGE
        self.peak = max(self.peak, rss)
        self.samples += 1

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


@dataclass
class Measurement:
    seconds: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    peak_sampled: int = 0
    peak_hwm: int = 0
    samples: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def peak_growth(self) -> int:
        return max(self.peak_sampled, self.peak_hwm) - self.rss_before

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "peak_growth": self.peak_growth}


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line (first lines of the message, plus a server's `reason`)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = " | ".join(lines[:3])
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict) and detail.get("reason"):
        text += f" ({detail['reason']})"
    return f"{type(exc).__name__}: {text}"[:300]


@contextmanager
def measured() -> Iterator[Measurement]:
    """Time the block and record its peak RSS growth; an exception is recorded, then re-raised."""
    gc.collect()
    result = Measurement()
    hwm_ok = _reset_high_water_mark()
    sampler = RssSampler()
    result.rss_before = rss_bytes()
    sampler.start()
    start = time.perf_counter()
    try:
        yield result
    except BaseException as exc:
        result.error = one_line(exc)
        raise
    finally:
        result.seconds = time.perf_counter() - start
        result.peak_sampled = sampler.stop()
        result.samples = sampler.samples
        result.peak_hwm = _high_water_mark() if hwm_ok else 0
        result.rss_after = rss_bytes()
