"""An array's bytes as independent zstd frames, compressed and decompressed on every core.

A zstd stream around the .npy is one frame: compressed on all cores, but decompressed on one
(0.75 GB/s of random float64 on this 2-core VM, ten times slower than reading the file). Frames of 4 MiB, as
Arrow compresses each buffer, decompress in parallel, each straight into its slice of the
preallocated array. The payload:

    MAGIC                                                8 bytes
    the .npy header (magic, version, length, dict)       as numpy writes it
    per frame: raw length, frame length (big-endian u32 each), the frame

The frames hold the data in the header's order, their raw lengths summing to its size. A frame
is a zstd frame, or, when its length has the STORED bit, the raw bytes themselves: data that
zstd would not shrink by an eighth (ZFS's rule) is stored as it is, since compressing it costs
more time than its few saved bytes win back (random float64 saves 4 % at level 1, and
decompresses at 1.3 GB/s a core, against 5 GB/s for reading the bytes). Whether a frame is worth
compressing is judged from a sample of it first, so incompressible data costs no compression.

MAGIC is not the .npy magic, so a reader that predates this layout refuses the payload instead of
decoding compressed bytes as an array; payloads of the first layout (MAGIC_V1: no stored
frames) are read as they were.
"""

from __future__ import annotations

import io
import os
import struct
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, Final

import zstandard

from xcomstore.errors import ObjectFormatError
from xcomstore.format import compression
from xcomstore.format.streams import budget_of

MAGIC: Final = b"\x93XCNPYZ2"
MAGIC_V1: Final = b"\x93XCNPYZ1"
MAGICS: Final = (MAGIC, MAGIC_V1)
FRAME_BYTES: Final = 4 << 20
STORED: Final = 1 << 31  # in a frame's length: the frame is the raw bytes, not compressed
# Compressed only when zstd saves at least an eighth (compression.shrinks), judged first from
# a sample of the frame (compression.sample_of), then from the whole frame.
# Level 1, as tables (format/blocks.py): on random float64 ~1.6x the speed of level 3, for
# 0.2 % of size.
LEVEL: Final = 1
# trust boundary: the most a frame may claim to hold (write_frames writes at most FRAME_BYTES;
# the slack lets a later writer choose larger frames without older readers refusing them).
MAX_FRAME_BYTES: Final = 8 << 20
_LENGTHS = struct.Struct(">II")
_CHUNK = 16 << 20  # the most read into an array at once
FRAMES: Final = "decompressed array frames"


def _workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _bound(raw: int) -> int:
    """The most a zstd frame of `raw` bytes can take (ZSTD_COMPRESSBOUND, with room for the header)."""
    return raw + raw // 255 + 1024


def write_frames(sink: BinaryIO, chunks: Iterator[Any]) -> None:
    """Compress the chunks (buffers) into frames of at most FRAME_BYTES, on all cores, written
    in order; a frame zstd would not shrink enough is written as it is (a view: no copy)."""

    def pieces() -> Iterator[memoryview]:
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            for start in range(0, view.nbytes, FRAME_BYTES):
                yield view[start : start + FRAME_BYTES]

    for view, frame in _in_order(_frame_of, pieces()):
        if frame is None:
            sink.write(_LENGTHS.pack(view.nbytes, view.nbytes | STORED))
            sink.write(view)
        else:
            sink.write(_LENGTHS.pack(view.nbytes, len(frame)))
            sink.write(frame)


def _frame_of(view: memoryview) -> tuple[memoryview, bytes | None]:
    """The view and its zstd frame, or None when it is to be stored as it is."""
    sample = compression.sample_of(view)
    # A small frame is its own sample: judged once, by compressing it whole, below.
    if len(sample) < view.nbytes and not compression.shrinks("zstd", sample, LEVEL):
        return view, None
    frame = zstandard.ZstdCompressor(level=LEVEL).compress(view)
    return view, (frame if len(frame) <= compression.KEEP * view.nbytes else None)


def read_frames(source: BinaryIO, target: memoryview, magic: bytes = MAGIC) -> None:
    """Fill `target` from the frames that follow in `source` (of the layout `magic` names),
    decompressing several at once; stored frames are read straight into their slice.

    trust boundary: each frame's lengths are checked (raw length within MAX_FRAME_BYTES and
    what is left of `target`; a zstd frame's length within zstd's bound for it, a stored one's
    its raw length) before its bytes are read; zstd then writes into the frame's own slice of
    `target`, and must fill it exactly."""
    filled = 0

    def frames() -> Iterator[tuple[bytes, memoryview]]:
        nonlocal filled
        while filled < len(target):
            raw, length = _LENGTHS.unpack(_exactly(source, _LENGTHS.size))
            stored = _check_lengths(raw, length, len(target) - filled, magic, filled)
            if stored:
                fill(source, target[filled : filled + raw], "the array's stored frame")
            else:
                yield _exactly(source, length), target[filled : filled + raw]
            filled += raw

    for _ in _in_order(lambda job: _decompress_into(*job), frames()):
        pass


def _check_lengths(raw: int, length: int, left: int, magic: bytes, at: int | None = None) -> bool:
    """Whether the frame is stored, once its lengths are possible; ObjectFormatError if not."""
    stored = bool(length & STORED) and magic == MAGIC
    size = length & ~STORED if stored else length
    if not 0 < raw <= min(MAX_FRAME_BYTES, left) or size > _bound(raw) or (stored and size != raw):
        where = f" at byte {at}" if at is not None else ""
        raise ObjectFormatError(
            f"the array's zstd frame{where} claims {raw} bytes in {size}{' (stored)' if stored else ''}: "
            f"{left} are left to fill, in frames of at most {MAX_FRAME_BYTES}"
        )
    return stored


def fill(source: BinaryIO, view: memoryview, what: str) -> None:
    """Read exactly len(view) bytes of `source` into `view`, in chunks. What is read is never
    changed again, so it is hashed while the next chunk is read (readinto_kept)."""
    read = getattr(source, "readinto_kept", None) or source.readinto  # type: ignore[attr-defined]
    filled = 0
    while filled < len(view):
        got = read(view[filled : filled + _CHUNK])
        if not got:
            raise ObjectFormatError(f"{what} ends after {filled} of {len(view)} bytes")
        filled += got


def _decompress_into(frame: bytes, out: memoryview) -> None:
    done = 0
    try:
        if zstandard.frame_content_size(frame) != len(out):
            raise ObjectFormatError(f"an array's zstd frame does not declare its {len(out)} bytes")
        reader = zstandard.ZstdDecompressor().stream_reader(frame)
        while done < len(out):
            got = reader.readinto(out[done:])  # never past `out`: its own slice of the array
            if not got:
                raise ObjectFormatError(f"an array's zstd frame ends after {done} of {len(out)} bytes")
            done += got
    except zstandard.ZstdError as exc:
        raise ObjectFormatError(f"an array's zstd frame is damaged: {exc}") from None


def _exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise ObjectFormatError(f"the array's zstd frames end early ({len(data)} of {size} bytes)")
    return data


def _in_order(work: Callable[[Any], Any], jobs: Iterator[Any]) -> Iterator[Any]:
    """work(job) for each job, on a thread per core, the results in the jobs' order. At most
    two jobs per thread are in flight, so memory stays a few frames; every started job is
    done before this ends, even on an error (none writes into an array being given up)."""
    workers = _workers()
    if workers == 1:
        yield from map(work, jobs)
        return
    pending: deque[Future[Any]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="xcomstore-zstd") as pool:
        try:
            for job in jobs:
                pending.append(pool.submit(work, job))
                while len(pending) > 2 * workers or (pending and pending[0].done()):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class NpyView(io.RawIOBase):
    """A payload read as the plain .npy it holds, for previews and exports that read .npy:
    frames are decompressed one after the other as they are read; an unframed payload (no
    compression, or a stream compressor's) passes through as it is.

    trust boundary: each frame is checked as read_frames checks it, and what it decompresses
    to is reserved from the stream's Budget (as FRAMES) before it is produced."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._budget = budget_of(source)
        first = source.read(len(MAGIC))
        self._magic = first
        self._pieces = self._framed() if first in MAGICS else None
        self._pending = memoryview(b"" if self._pieces else first)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        while not self._pending and self._pieces is not None:
            self._pending = memoryview(next(self._pieces, b""))
            if not self._pending:
                self._pieces = None
        if not self._pending:
            return int(self._source.readinto(view))  # type: ignore[attr-defined]
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _framed(self) -> Iterator[bytes | bytearray]:
        """The .npy header as stored, then each frame decompressed; its end ends the payload."""
        prefix = _exactly(self._source, 8)  # the .npy magic and version
        width = 2 if prefix[6:7] == b"\x01" else 4
        length_bytes = _exactly(self._source, width)
        length = int.from_bytes(length_bytes, "little")
        if length > MAX_FRAME_BYTES:
            raise ObjectFormatError(f"the array's .npy header claims {length} bytes")
        yield prefix + length_bytes + _exactly(self._source, length)
        while header := self._source.read(_LENGTHS.size):
            if len(header) != _LENGTHS.size:
                raise ObjectFormatError("the array's zstd frames end inside a frame's lengths")
            raw, size = _LENGTHS.unpack(header)
            stored = _check_lengths(raw, size, MAX_FRAME_BYTES, self._magic)
            self._budget.reserve(raw, FRAMES)
            if stored:
                yield _exactly(self._source, raw)
                continue
            out = bytearray(raw)
            _decompress_into(_exactly(self._source, size), memoryview(out))
            yield out
