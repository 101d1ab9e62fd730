"""Writing one object to several locations at once, and reading the first copy that is good."""

from __future__ import annotations

import io
from typing import BinaryIO

from xcomstore.storage.retry import is_store_error


class TeeWriter(io.RawIOBase):
    """Writes every chunk to each sink; a sink that fails is dropped while `required` remain.

    This is how one encoding pass fills several locations at once.
    """

    def __init__(self, sinks: list[BinaryIO], required: int) -> None:
        self._sinks = sinks
        self._required = required
        self.failures: dict[int, BaseException] = {}

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        for index, sink in enumerate(self._sinks):
            if index in self.failures:
                continue
            try:
                sink.write(data)
            except Exception as exc:
                if not is_store_error(exc):
                    raise
                self.failures[index] = exc
        if len(self._sinks) - len(self.failures) < self._required:
            reasons = "; ".join(f"{type(e).__name__}: {e}" for e in self.failures.values())
            raise OSError(f"too few copies left to write ({reasons})")
        return memoryview(data).nbytes
