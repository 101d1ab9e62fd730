"""File-like wrappers that hash and count the bytes passing through them.

They let the object format checksum a payload while it streams, instead of holding it whole.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import BinaryIO

from xcomstore.errors import ObjectFormatError, RejectedValueError
from xcomstore.format import checksum

_BACKGROUND_MIN = 64 << 10  # smaller chunks are hashed in line: a thread hop would cost more
_MAX_PENDING = 64 << 20


class BackgroundHash:
    """A checksum computed on a worker thread, so hashing overlaps encoding, compression and I/O.

    hashlib and blake3 release the GIL on large updates, so on two cores the checksum is nearly
    free.
    Chunks are queued as they are when immutable (bytes, read-only views of a value's own
    memory), else copied first: callers may reuse their buffers once write() returns. At most
    _MAX_PENDING bytes wait (a chunk that was read is kept alive until hashed): when the
    hashing falls behind, update() waits instead of the memory growing.
    """

    def __init__(self, algorithm: str) -> None:
        self._hash = checksum.new(algorithm)
        self._queue: queue.Queue[bytes | memoryview | None] | None = None
        self._worker: threading.Thread | None = None
        self._pending = 0
        self._room = threading.Condition()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")  # blake3 takes only byte buffers (a NumPy view may be float64)
        size = view.nbytes
        if self._queue is None and size < _BACKGROUND_MIN:
            self._hash.update(view)
            return
        if self._queue is None:
            self._queue = queue.Queue()
            self._worker = threading.Thread(target=self._run, name="xcomstore-checksum", daemon=True)
            self._worker.start()
        immutable = isinstance(data, bytes) or (isinstance(data, memoryview) and data.readonly)
        with self._room:
            while self._pending and self._pending + size > _MAX_PENDING:
                self._room.wait()
            self._pending += size
        self._queue.put(view if immutable else bytes(view))

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)
            with self._room:
                self._pending -= memoryview(chunk).nbytes
                self._room.notify()

    def stop(self) -> None:
        """End the worker thread (idempotent); a stream given up half-way must call this."""
        if self._queue is not None and self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._queue = None

    def digest(self) -> bytes:
        self.stop()
        return self._hash.digest()


class HashingWriter(io.RawIOBase):
    """Writes through to `sink`, keeping the checksum and the count of what was written."""

    def __init__(self, sink: BinaryIO, algorithm: str) -> None:
        self._sink = sink
        self._hash = BackgroundHash(algorithm)
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        self._hash.update(view)
        self._sink.write(view)
        self.count += view.nbytes
        return view.nbytes

    def digest(self) -> bytes:
        return self._hash.digest()

    def close(self) -> None:
        # Leave the sink open: the object format still has to write its seal after the payload.
        self._hash.stop()
        super().close()


class HashingReader(io.RawIOBase):
    """Reads exactly `length` bytes from `source`, keeping their checksum.

    Reading past `length` gives EOF; a source that ends early raises ObjectFormatError, so a
    truncated object is never mistaken for a short one.
    """

    def __init__(self, source: BinaryIO, length: int, algorithm: str) -> None:
        self._source = source
        self._hash = BackgroundHash(algorithm)
        self.remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.remaining)
        if want == 0:
            return 0
        got = self._source.readinto(view[:want])  # type: ignore[attr-defined]
        self._took(view[: got or 0])
        return int(got)

    def read(self, size: int | None = -1) -> bytes:
        """The source's own bytes, hashed without a copy: Arrow and NumPy read this way, and
        RawIOBase.read would copy twice (into a buffer for readinto, then that buffer's bytes
        for the hashing thread)."""
        if size is None or size < 0:
            parts = []
            while self.remaining:  # a source that ends early raises in read()
                parts.append(self.read(self.remaining))
            return b"".join(parts)
        want = min(size, self.remaining)
        if want == 0:
            return b""
        data = self._source.read(want)
        self._took(data)
        return data

    def _took(self, chunk: bytes | memoryview) -> None:
        """Account for a chunk just read: hash it, or fail if the source ended early."""
        if not len(chunk):
            raise ObjectFormatError(f"object is truncated: {self.remaining} payload bytes missing")
        self._hash.update(chunk)
        self.remaining -= len(chunk)

    def close(self) -> None:
        self._hash.stop()
        super().close()

    def drain(self, chunk: int = 1 << 20) -> None:
        """Hash whatever the decoder left unread, so the checksum covers the whole payload."""
        while self.remaining:
            self.read(chunk)  # the source's bytes go to the hash as they are: no copy

    def digest(self) -> bytes:
        return self._hash.digest()


class CountingWriter(io.RawIOBase):
    """Writes through to `sink`, counting bytes: the payload's size before compression.

    With a `limit`, the write that would exceed it raises RejectedValueError instead.
    """

    def __init__(self, sink: BinaryIO, limit: int | None = None) -> None:
        self._sink = sink
        self._limit = limit
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = memoryview(data).nbytes
        if self._limit is not None and self.count + size > self._limit:
            raise RejectedValueError(
                f"the value grew past the size limit of {self._limit} bytes, [xcomstore] max_size "
                "(AIRFLOW__XCOMSTORE__MAX_SIZE) while being written. Nothing was stored."
            )
        self._sink.write(data)
        self.count += size
        return size
