"""The two kinds of source an object is read from: a seekable file, and a front-to-back stream
as an object store's streamed GET gives (no seek, no tell; small reads, to find off-by-ones)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, BinaryIO


class StreamedSource(io.RawIOBase):
    """Reads front to back only, as an object store's streamed GET does: no seek, no tell."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


SOURCES: dict[str, Callable[[bytes], BinaryIO]] = {
    "seekable": io.BytesIO,
    "streamed": lambda data: io.BufferedReader(StreamedSource(data), 64),  # type: ignore[arg-type]
}
