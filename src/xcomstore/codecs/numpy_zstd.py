"""An array's bytes as independent zstd frames, compressed and decompressed on every core.

A zstd stream around the .npy is one frame: compressed on all cores, but decompressed on one
(0.75 GB/s of random float64 on this 2-core VM, ten times slower than reading the file). Frames of 4 MiB, as
Arrow compresses each buffer, decompress in parallel, each straight into its slice of the
preallocated array. The payload:

    MAGIC                                                8 bytes
    the .npy header (magic, version, length, dict)       as numpy writes it
    per frame: raw length, frame length (big-endian u32 each), the zstd frame

The frames hold the data in the header's order, their raw lengths summing to its size. MAGIC
is not the .npy magic, so a reader that predates this layout refuses the payload instead of
decoding compressed bytes as an array.
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
from xcomstore.format.compression import DEFAULT_LEVELS
from xcomstore.format.streams import budget_of

MAGIC: Final = b"\x93XCNPYZ1"
FRAME_BYTES: Final = 4 << 20
# trust boundary: the most a frame may claim to hold (write_frames writes at most FRAME_BYTES;
# the slack lets a later writer choose larger frames without older readers refusing them).
MAX_FRAME_BYTES: Final = 8 << 20
_LENGTHS = struct.Struct(">II")
FRAMES: Final = "decompressed array frames"


def _workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _bound(raw: int) -> int:
    """The most a zstd frame of `raw` bytes can take (ZSTD_COMPRESSBOUND, with room for the header)."""
    return raw + raw // 255 + 1024


def write_frames(sink: BinaryIO, chunks: Iterator[Any]) -> None:
    """Compress the chunks (buffers) into frames of at most FRAME_BYTES, on all cores, written
    in order."""
    level = DEFAULT_LEVELS["zstd"]

    def compress(view: memoryview) -> tuple[int, bytes]:
        return view.nbytes, zstandard.ZstdCompressor(level=level).compress(view)

    def pieces() -> Iterator[memoryview]:
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            for start in range(0, view.nbytes, FRAME_BYTES):
                yield view[start : start + FRAME_BYTES]

    for raw, frame in _in_order(compress, pieces()):
        sink.write(_LENGTHS.pack(raw, len(frame)))
        sink.write(frame)


def read_frames(source: BinaryIO, target: memoryview) -> None:
    """Fill `target` from the frames that follow in `source`, decompressing several at once.

    trust boundary: each frame's lengths are checked (raw length within MAX_FRAME_BYTES and
    what is left of `target`, frame length within zstd's bound for it) before its bytes are
    read; zstd then writes into the frame's own slice of `target`, and must fill it exactly."""
    filled = 0

    def frames() -> Iterator[tuple[bytes, memoryview]]:
        nonlocal filled
        while filled < len(target):
            raw, length = _LENGTHS.unpack(_exactly(source, _LENGTHS.size))
            if not 0 < raw <= min(MAX_FRAME_BYTES, len(target) - filled) or length > _bound(raw):
                raise ObjectFormatError(
                    f"the array's zstd frame at byte {filled} claims {raw} bytes in {length}: "
                    f"{len(target) - filled} are left to fill, in frames of at most {MAX_FRAME_BYTES}"
                )
            yield _exactly(source, length), target[filled : filled + raw]
            filled += raw

    for _ in _in_order(lambda job: _decompress_into(*job), frames()):
        pass


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
        self._pieces = self._framed() if (first := source.read(len(MAGIC))) == MAGIC else None
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
            if not 0 < raw <= MAX_FRAME_BYTES or size > _bound(raw):
                raise ObjectFormatError(f"an array's zstd frame claims {raw} bytes in {size}")
            self._budget.reserve(raw, FRAMES)
            out = bytearray(raw)
            _decompress_into(_exactly(self._source, size), memoryview(out))
            yield out
