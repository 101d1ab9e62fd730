"""Streaming compression: zstd, lz4 (frame format), gzip, or none.

Each codec wraps a binary sink for writing or a binary source for reading, so that a payload is
compressed while it is produced and decompressed while it is consumed, never held whole.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from typing import BinaryIO, Final, cast

import lz4.frame
import zstandard

from xcomstore.errors import ConfigError, ObjectFormatError
from xcomstore.format.streams import BoundedReader, Budget

NAMES: Final = ("zstd", "lz4", "gzip", "none")
DEFAULT_LEVELS: Final = {"zstd": 3, "lz4": 0, "gzip": 6, "none": 0}
# Valid level ranges, so a bad level fails at start-up rather than inside a task.
LEVEL_RANGES: Final = {"zstd": (-7, 22), "lz4": (0, 16), "gzip": (0, 9), "none": (0, 0)}


def check(name: str, level: int | None) -> None:
    """Raise ConfigError unless `name` is a known codec and `level` is in its range."""
    if name not in NAMES:
        raise ConfigError(f"unknown compression {name!r}: choose one of {', '.join(NAMES)}")
    if level is not None:
        low, high = LEVEL_RANGES[name]
        if not low <= level <= high:
            raise ConfigError(f"compression level {level} is out of range {low}..{high} for {name}")


#: Worth compressing only if it saves at least an eighth (ZFS's rule): less costs CPU on every
#: write and read for little room.
KEEP: Final = 7 / 8


_SAMPLES: Final = 8
_SAMPLE_BYTES: Final = 16 << 10


def sample_of(data: bytes | memoryview) -> bytes | memoryview:
    """A few slices spread over `data` (8 of 16 KiB: 3 % of 4 MiB), what shrinks() judges it
    by; small data whole."""
    view = memoryview(data).cast("B")
    if view.nbytes <= _SAMPLES * _SAMPLE_BYTES * 2:
        return view
    step = view.nbytes // _SAMPLES
    return b"".join(view[i * step : i * step + _SAMPLE_BYTES] for i in range(_SAMPLES))


def shrinks(name: str, sample: bytes | memoryview, level: int | None = None) -> bool:
    """Whether compressing with `name` saves at least an eighth of `sample` (a few slices of a
    payload, taken before it is written: random bytes, media and archives do not shrink)."""
    if name == "none":
        return False
    return not len(sample) or len(compress(name, sample, level)) <= KEEP * len(sample)


_ZSTD_JOB = 1 << 20


class _Uncloseable:
    """Passes writes through but leaves the wrapped sink open when closed."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        return self._sink.write(data)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        self.closed = True


def compressing_writer(name: str, sink: BinaryIO, level: int | None = None) -> BinaryIO:
    """A writable stream that compresses into `sink`. Closing it ends the frame, not `sink`."""
    check(name, level)
    lvl = DEFAULT_LEVELS[name] if level is None else level
    if name == "zstd":
        # threads=-1: one compression thread per core, the payload is large by construction.
        # Jobs of 1 MiB: zstd's default (4x the window) keeps ~90 MB in flight, which doubled the
        # memory of an 80 MB push; at 1 MiB it is ~10 MB, with the same speed and ratio.
        params = zstandard.ZstdCompressionParameters.from_level(lvl, threads=-1, job_size=_ZSTD_JOB)
        compressor = zstandard.ZstdCompressor(compression_params=params)
        return cast(BinaryIO, compressor.stream_writer(sink, closefd=False))
    if name == "lz4":
        return cast(BinaryIO, lz4.frame.LZ4FrameFile(_Uncloseable(sink), mode="wb", compression_level=lvl))
    if name == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=lvl, mtime=0))
    return cast(BinaryIO, _Uncloseable(sink))  # "none": check() let nothing else through


def decompressing_reader(name: str, source: BinaryIO, budget: Budget | None = None) -> BinaryIO:
    """A readable stream of the decompressed bytes of `source`, bounded by `budget`.

    trust boundary: a few KB of zstd, lz4 or gzip can expand to gigabytes. The BoundedReader
    around the decompressor asks it for no more than the budget has left, and raises as soon as
    more than the limit comes out; the stream carries the budget on to the codec (budget_of)."""
    readers: dict[str, Callable[[], object]] = {
        "zstd": lambda: zstandard.ZstdDecompressor().stream_reader(
            source, read_across_frames=True, closefd=False
        ),
        "lz4": lambda: lz4.frame.LZ4FrameFile(source, mode="rb"),
        "gzip": lambda: gzip.GzipFile(fileobj=source, mode="rb"),
        "none": lambda: source,
    }
    if name not in readers:
        raise ConfigError(f"unknown compression {name!r}")
    return cast(BinaryIO, BoundedReader(cast(BinaryIO, readers[name]()), budget or Budget()))


def compress(name: str, data: bytes | memoryview, level: int | None = None) -> bytes | memoryview:
    """`data` compressed whole, as one frame: a block of a blocked payload (format/blocks.py).
    Single-threaded: blocks are compressed in parallel by their writer."""
    check(name, level)
    lvl = DEFAULT_LEVELS[name] if level is None else level
    if name == "zstd":
        return zstandard.ZstdCompressor(level=lvl).compress(data)
    if name == "lz4":
        return bytes(lz4.frame.compress(data, compression_level=lvl))
    if name == "gzip":
        return gzip.compress(data, compresslevel=lvl, mtime=0)
    return data  # "none": the bytes as they are, not a copy


def decompress(name: str, data: bytes | memoryview, size: int) -> bytes | memoryview:
    """The `size` bytes that `data` decompresses to; ObjectFormatError if it is any other size.

    trust boundary: the size is what an index claims, bounded by the read's budget before this
    is called; the frame's own claims are not believed (a bounded reader asks the decompressor
    for at most one byte more than `size`)."""
    if name == "none":
        plain = data
    else:
        try:
            plain = _decompressed(name, data, size)
        except ObjectFormatError:
            raise
        except Exception as exc:  # a damaged frame: each library fails its own way
            raise ObjectFormatError(f"a block does not decompress: {type(exc).__name__}: {exc}") from None
    if len(plain) != size:
        raise ObjectFormatError(f"a block decompresses to {len(plain)} bytes, its index says {size}")
    return plain


_ONE_SHOT: Final[dict[str, Callable[[bytes | memoryview], bytes]]] = {
    "zstd": lambda data: zstandard.ZstdDecompressor().decompress(data),
    "lz4": lambda data: bytes(lz4.frame.decompress(data)),
}


def _declared_size(name: str, data: bytes | memoryview) -> int | None:
    """The decompressed size a zstd or lz4 frame declares in its header, if it does."""
    try:
        if name == "zstd":
            declared = zstandard.frame_content_size(data)
            return declared if declared >= 0 else None
        found = lz4.frame.get_frame_info(data).get("content_size")
        return int(found) if found else None
    except (zstandard.ZstdError, RuntimeError, ValueError):
        return None


def _decompressed(name: str, data: bytes | memoryview, size: int) -> bytes:
    if name in _ONE_SHOT and _declared_size(name, data) == size:
        # The frame declares the size the budget has paid for: decompressed in one call, into
        # a buffer of exactly that size (what decompress() allocates from the declaration).
        return _ONE_SHOT[name](data)
    budget = Budget(size, "the size its index gives the block")
    stream = decompressing_reader(name, cast(BinaryIO, io.BytesIO(data)), budget)
    parts: list[bytes] = []
    got = 0
    while chunk := stream.read(size + 1 - got):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
