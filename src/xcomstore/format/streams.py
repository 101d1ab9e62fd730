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
# A payload read of fewer bytes is hashed in line (~1 ms for 4 MB with BLAKE3): a worker thread
# for each small object costs more than it hides, and in a fan-in, where many small objects are
# read at once, those threads contend for the GIL with the reads they were meant to overlap.
_BACKGROUND_PAYLOAD_MIN = 4 << 20
_MAX_PENDING = 64 << 20


class BackgroundHash:
    """A checksum computed on a worker thread, so hashing overlaps encoding, compression and I/O.

    hashlib and blake3 release the GIL on large updates, so on two cores the checksum is nearly
    free.
    Chunks are queued as they are when immutable (bytes, read-only views of a value's own
    memory). A writable one (an array being read into) may change once update() returns, and
    copying it costs more than hashing it: it is hashed in the caller's thread, once the queued
    chunks before it are done. At most _MAX_PENDING bytes wait (a chunk that was read is kept
    alive until hashed): when the hashing falls behind, update() waits instead of the memory
    growing.
    """

    def __init__(self, algorithm: str, *, inline: bool = False) -> None:
        self._hash = checksum.new(algorithm)
        self._queue: queue.Queue[bytes | memoryview | None] | None = None
        self._worker: threading.Thread | None = None
        self._pending = 0
        self._room = threading.Condition()
        # hash in the caller's thread: asked for, or no worker thread could be started
        self._inline = inline

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")  # blake3 takes only byte buffers (a NumPy view may be float64)
        size = view.nbytes
        immutable = isinstance(data, bytes) or (isinstance(data, memoryview) and data.readonly)
        if not immutable:
            self._drain()  # then the worker is idle: the hash is this thread's to update
            self._hash.update(view)
            return
        if self._queue is None and (size < _BACKGROUND_MIN or not self._start()):
            self._hash.update(view)
            return
        assert self._queue is not None
        with self._room:
            while self._pending and self._pending + size > _MAX_PENDING:
                self._room.wait()
            self._pending += size
        self._queue.put(view)

    def _drain(self) -> None:
        """Wait until every queued chunk has been hashed."""
        with self._room:
            while self._pending:
                self._room.wait()

    def _start(self) -> bool:
        """Start the worker thread; False (and hashing in line from then on) where none can be
        started, as under a thread or memory limit: a slower read is better than a failed one."""
        if self._inline:
            return False
        worker = threading.Thread(target=self._run, name="xcomstore-checksum", daemon=True)
        self._queue = queue.Queue()
        try:
            worker.start()
        except RuntimeError:
            self._queue, self._inline = None, True
            return False
        self._worker = worker
        return True

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
        self._hash = BackgroundHash(algorithm, inline=length < _BACKGROUND_PAYLOAD_MIN)
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

    def readinto_kept(self, buffer: memoryview) -> int:
        """readinto() for a caller that never changes what was read into `buffer` (an array
        being filled): it is hashed on the worker thread, overlapping the next read, with no
        copy. It is hashed by the time digest() returns."""
        view = buffer.cast("B")
        want = min(len(view), self.remaining)
        if want == 0:
            return 0
        got = self._source.readinto(view[:want])  # type: ignore[attr-defined]
        self._took(view[: got or 0].toreadonly())
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


class Budget:
    """How many bytes decoding one payload may produce: shared by the bounded decompressing
    reader and the codec, so that a small hostile object cannot decode to a huge value.

    trust boundary: the payload's bytes are whoever-wrote-the-bucket's; its seal is unkeyed and
    proves nothing about them. `limit` comes from what the reader trusts instead: the
    reference's `size` (from the metadata DB) and [xcomstore] max_size (`what` names it).

    Two tallies, each bounded by `limit` on its own: the bytes that came out of the stream
    (`take`, by BoundedReader), and the bytes a decoder is about to allocate from sizes the
    payload claims (`reserve`, per `kind`: decompressed Arrow buffers, preallocated arrays),
    checked BEFORE allocating. They are not added together: a legitimate value's stream and
    its decompressed buffers are each about its size, and are not all held at once.
    """

    def __init__(self, limit: int | None = None, what: str = "") -> None:
        self.limit = limit
        self.what = what
        self.used = 0
        self._reserved: dict[str, int] = {}

    @classmethod
    def for_read(cls, reference_size: int | None, max_size: int | None) -> Budget:
        """The budget of a read: the reference's `size` when read through one, and max_size
        when set, each with slack_for() added; the tighter one wins. Neither: no limit."""
        bounds = []
        if reference_size is not None:
            bounds.append(
                (reference_size + slack_for(reference_size), f"the reference's size {reference_size} B")
            )
        if max_size is not None:
            bounds.append((max_size + slack_for(max_size), f"[xcomstore] max_size = {max_size} B"))
        if not bounds:
            return cls()
        limit, what = min(bounds)
        return cls(limit, f"{what}, with {slack_for(limit)} B of slack")

    @property
    def remaining(self) -> int | None:
        """Bytes the stream may still yield, or None for no limit."""
        return None if self.limit is None else max(0, self.limit - self.used)

    def take(self, size: int) -> None:
        """Count `size` bytes that came out of the stream; past the limit is an error."""
        self.used += size
        if self.limit is not None and self.used > self.limit:
            raise self.exceeded("its stream")

    def reserve(self, size: int, kind: str) -> None:
        """Claim `size` bytes a decoder is about to allocate for `kind`, before allocating."""
        total = self._reserved.get(kind, 0) + size
        if size < 0 or (self.limit is not None and total > self.limit):
            raise self.exceeded(f"its {kind} ({total} bytes claimed)")
        self._reserved[kind] = total

    def exceeded(self, where: str) -> ObjectFormatError:
        # An ObjectFormatError, not a RejectedValueError: nothing is being stored; the object
        # says it decodes to more than a legitimate one can, so it is not a valid object (and a
        # read fails over to the next copy, as for any damaged one).
        return ObjectFormatError(
            f"the payload decodes to more than its limit of {self.limit} bytes ({self.what}), "
            f"in {where}: refused before decoding further"
        )


def slack_for(size: int) -> int:
    """What a legitimate payload of `size` bytes may decode to beyond it. A reference's size is
    the exact stream length for every codec but Arrow with its own compression, where it is the
    table's nbytes: the stream adds the IPC framing (the schema, with pandas' metadata, ~200 B a
    column; per batch a message of ~40 B a column and buffer, and 8 B of length and up to 7 B
    of padding per buffer), which 1 MiB plus 1/64 of the size covers for batches of 4 MiB
    (encode's) up to thousands of columns. 1 GiB allowed decodes at most 17 MiB more."""
    return (1 << 20) + size // 64


def budget_of(source: object) -> Budget:
    """The budget a decoder's source carries (a BoundedReader's), or an unlimited one."""
    found = getattr(source, "budget", None)
    return found if isinstance(found, Budget) else Budget()


class BoundedReader(io.RawIOBase):
    """The decompressed payload, stopped with the Budget's error as soon as more than its
    limit has come out. Each read asks the decompressor for at most one byte more than the
    budget has left: the decompressor allocates its output at the size asked, so the bytes past
    the limit are never produced, let alone allocated (a read(-1) is done in chunks)."""

    _CHUNK = 8 << 20

    def __init__(self, source: BinaryIO, budget: Budget) -> None:
        self._source = source
        self.budget = budget

    def readable(self) -> bool:
        return True

    def _cap(self, size: int) -> int:
        remaining = self.budget.remaining
        return size if remaining is None else min(size, remaining + 1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        got = self._source.readinto(view[: self._cap(len(view))])  # type: ignore[attr-defined]
        self.budget.take(got or 0)
        return int(got or 0)

    def readinto_kept(self, buffer: memoryview) -> int:
        """readinto() for a caller that never changes what it read (see HashingReader's)."""
        # A decompressor has no readinto_kept: its output is not what is hashed.
        read = getattr(self._source, "readinto_kept", None) or self._source.readinto  # type: ignore[attr-defined]
        got = read(memoryview(buffer).cast("B")[: self._cap(len(buffer))])
        self.budget.take(got or 0)
        return int(got or 0)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while chunk := self.read(self._CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        data = self._source.read(self._cap(size))
        self.budget.take(len(data))
        return data
