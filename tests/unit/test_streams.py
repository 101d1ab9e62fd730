"""streams: hashing and counting wrappers around sinks and sources."""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Any

import pytest
from blake3 import blake3

from xcomstore.errors import ObjectFormatError, RejectedValueError
from xcomstore.format.streams import CountingWriter, HashingReader, HashingWriter
from xcomstore.storage.replicas import TeeWriter

DATA = bytes(range(256)) * 40


@pytest.fixture(params=["blake3", "sha256"])
def algorithm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _hasher(algorithm: str) -> Any:
    """The library's own hasher, to check the streams against."""
    return blake3() if algorithm == "blake3" else hashlib.sha256()


def _digest(algorithm: str, data: bytes) -> bytes:
    hasher = _hasher(algorithm)
    hasher.update(data)
    return bytes(hasher.digest())


def test_hashing_writer_passes_through_and_hashes(algorithm: str) -> None:
    sink = io.BytesIO()
    writer = HashingWriter(sink, algorithm)
    for part in (DATA[:10], bytearray(DATA[10:100]), memoryview(DATA)[100:]):
        assert writer.write(part) == len(part)
    writer.close()
    assert not sink.closed, "the seal is written after the payload"
    assert sink.getvalue() == DATA
    assert writer.count == len(DATA)
    assert writer.digest() == _digest(algorithm, DATA)


def test_hashing_writer_counts_multibyte_views_in_bytes(algorithm: str) -> None:
    writer = HashingWriter(io.BytesIO(), algorithm)
    view = memoryview(b"\x00" * 64).cast("q")  # 8 items of 8 bytes
    assert writer.write(view) == 64
    assert writer.count == 64


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_hashing_reader_reads_exactly_length(chunk: int, algorithm: str) -> None:
    source = io.BytesIO(DATA + b"SEAL")
    reader = HashingReader(source, len(DATA), algorithm)
    parts = []
    while part := reader.read(chunk):
        parts.append(part)
    assert b"".join(parts) == DATA
    assert reader.read(10) == b""  # EOF at length, not at the source's end
    assert source.read() == b"SEAL"
    assert reader.digest() == _digest(algorithm, DATA)


def test_hashing_reader_drain_hashes_the_rest(algorithm: str) -> None:
    reader = HashingReader(io.BytesIO(DATA), len(DATA), algorithm)
    reader.read(100)
    reader.drain(chunk=33)
    assert reader.remaining == 0
    assert reader.digest() == _digest(algorithm, DATA)


def test_hashing_reader_empty_payload(algorithm: str) -> None:
    reader = HashingReader(io.BytesIO(b"rest"), 0, algorithm)
    assert reader.read() == b""
    reader.drain()
    assert reader.digest() == _digest(algorithm, b"")


@pytest.mark.parametrize("missing", [1, 100, len(DATA)])
def test_hashing_reader_truncated_source(missing: int, algorithm: str) -> None:
    reader = HashingReader(io.BytesIO(DATA[: len(DATA) - missing]), len(DATA), algorithm)
    with pytest.raises(ObjectFormatError, match="truncated"):
        reader.read()
    with pytest.raises(ObjectFormatError, match="truncated"):
        HashingReader(io.BytesIO(DATA[: len(DATA) - missing]), len(DATA), algorithm).drain()


def test_hashing_writer_large_chunks_and_reused_buffers(algorithm: str) -> None:
    """Large writes may be hashed on another thread: reusing the buffer must not change the hash."""
    sink = io.BytesIO()
    writer = HashingWriter(sink, algorithm)
    buffer = bytearray(1 << 20)
    expected = _hasher(algorithm)
    for fill in range(5):
        buffer[:] = bytes([fill]) * len(buffer)
        writer.write(buffer)
        expected.update(buffer)
        writer.write(b"small")
        expected.update(b"small")
    buffer[:] = b"\xff" * len(buffer)  # overwritten after the last write
    assert writer.digest() == expected.digest()
    assert writer.count == 5 * ((1 << 20) + 5)
    assert _digest(algorithm, sink.getvalue()) == expected.digest()


def test_hashing_reader_large_reads(algorithm: str) -> None:
    data = bytes(range(256)) * 20_000  # 5 MB
    reader = HashingReader(io.BytesIO(data), len(data), algorithm)
    buffer = bytearray(1 << 20)
    total = 0
    while got := reader.readinto(buffer):
        total += got
    assert total == len(data)
    assert reader.digest() == _digest(algorithm, data)


def test_counting_writer() -> None:
    sink = io.BytesIO()
    writer = CountingWriter(sink)
    writer.write(b"abc")
    writer.write(memoryview(b"defgh"))
    writer.close()
    assert writer.count == 8
    assert sink.getvalue() == b"abcdefgh"
    assert not sink.closed


def test_counting_writer_limit() -> None:
    sink = io.BytesIO()
    writer = CountingWriter(sink, limit=10)
    writer.write(b"12345")
    writer.write(b"67890")
    with pytest.raises(RejectedValueError, match="size limit of 10 bytes"):
        writer.write(b"1")
    assert writer.count == 10
    assert sink.getvalue() == b"1234567890", "the write past the limit is not passed on"


class BrokenSink(io.BytesIO):
    """Accepts `good` writes, then fails like a dropped connection."""

    def __init__(self, good: int, error: Exception | None = None) -> None:
        super().__init__()
        self.good = good
        self.error = error or OSError("connection reset")

    def write(self, data: Any) -> int:
        if self.good == 0:
            raise self.error
        self.good -= 1
        return super().write(data)


def test_tee_writes_every_sink() -> None:
    sinks = [io.BytesIO() for _ in range(3)]
    tee = TeeWriter(sinks, required=3)
    for part in (b"abc", memoryview(b"defg"), bytearray(b"h")):
        assert tee.write(part) == len(part)
    assert [s.getvalue() for s in sinks] == [b"abcdefgh"] * 3
    assert tee.failures == {}


def test_tee_drops_a_failing_sink_while_enough_remain() -> None:
    good, broken = io.BytesIO(), BrokenSink(good=1)
    tee = TeeWriter([broken, good], required=1)
    tee.write(b"one")
    tee.write(b"two")
    tee.write(b"three")
    assert good.getvalue() == b"onetwothree"
    assert broken.getvalue() == b"one"
    assert list(tee.failures) == [0]
    assert isinstance(tee.failures[0], OSError)


def test_tee_fails_when_too_few_sinks_remain() -> None:
    tee = TeeWriter([BrokenSink(good=0), io.BytesIO()], required=2)
    with pytest.raises(OSError, match=r"too few copies left to write.*connection reset"):
        tee.write(b"x")


def test_tee_does_not_swallow_programming_errors() -> None:
    tee = TeeWriter([BrokenSink(good=0, error=ValueError("bug")), io.BytesIO()], required=1)
    with pytest.raises(ValueError, match="bug"):
        tee.write(b"x")


def test_hashing_goes_on_in_line_when_no_thread_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a thread or memory limit Thread.start() raises: the checksum is still right, and
    stopping does not try to join a thread that never started."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    data = bytes(range(256)) * 20480  # 5 MiB: large enough for the background path
    reader = HashingReader(io.BytesIO(data), len(data), "sha256")
    assert reader.read() == data
    reader.close()
    assert reader.digest() == hashlib.sha256(data).digest()


def _hashing_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "xcomstore-checksum"}


@pytest.mark.parametrize(("size", "threaded"), [(1 << 20, False), (5 << 20, True)])
def test_a_small_payload_is_hashed_in_line(size: int, threaded: bool) -> None:
    """A fan-in reads many small objects at once: a hashing thread for each would contend for
    the GIL with the reads. Only a payload of 4 MiB or more gets one."""
    data = bytes(range(256)) * (size // 256)
    before = _hashing_threads()
    reader = HashingReader(io.BytesIO(data), len(data), "blake3")
    assert reader.read(1 << 20) == data[: 1 << 20]
    assert bool(_hashing_threads() - before) is threaded
    reader.drain()
    assert reader.digest() == blake3(data).digest()
    reader.close()
