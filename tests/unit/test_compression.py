"""compression: streaming codecs round-trip, and bad names or levels fail as ConfigError."""

from __future__ import annotations

import io
import os

import pytest

from xcomstore.errors import ConfigError
from xcomstore.format import compression

# Compressible text followed by incompressible noise, so every codec does real work.
SAMPLE = b"xcomstore " * 3000 + os.urandom(20_000)
# The ends of each range (zstd's top levels are slow, and 19 exercises the same path) and one inside.
LEVELS = [
    ("zstd", -7),
    ("zstd", 1),
    ("zstd", 19),
    ("lz4", 0),
    ("lz4", 9),
    ("lz4", 16),
    ("gzip", 0),
    ("gzip", 1),
    ("gzip", 9),
    ("none", 0),
]


def compress(name: str, data: bytes, level: int | None = None, chunk: int = 1 << 16) -> bytes:
    sink = io.BytesIO()
    writer = compression.compressing_writer(name, sink, level)
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
    writer.close()
    assert not sink.closed, "closing the compressor must leave the sink open"
    return sink.getvalue()


def decompress(name: str, data: bytes, chunk: int = -1) -> bytes:
    reader = compression.decompressing_reader(name, io.BytesIO(data))
    if chunk < 0:
        return bytes(reader.read())
    parts = []
    while part := reader.read(chunk):
        parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize("name", compression.NAMES)
@pytest.mark.parametrize("data", [b"", b"x", SAMPLE], ids=["empty", "one-byte", "sample"])
def test_round_trip_default_level(name: str, data: bytes) -> None:
    assert decompress(name, compress(name, data)) == data


@pytest.mark.parametrize(("name", "level"), LEVELS)
def test_round_trip_extreme_levels(name: str, level: int) -> None:
    compression.check(name, level)
    assert decompress(name, compress(name, SAMPLE, level)) == SAMPLE


@pytest.mark.parametrize("name", ["zstd", "lz4", "gzip"])
def test_compresses(name: str) -> None:
    data = b"abc" * 100_000
    assert len(compress(name, data)) < len(data) // 10


def test_none_is_identity() -> None:
    assert compress("none", SAMPLE) == SAMPLE


@pytest.mark.parametrize("name", compression.NAMES)
def test_large_input_in_small_writes_and_reads(name: str) -> None:
    data = (b"0123456789abcdef" * 4096 + os.urandom(4096)) * 70  # ~4.9 MB, part incompressible
    packed = compress(name, data, chunk=4096)
    assert decompress(name, packed, chunk=1000) == data


def test_frame_ends_at_close_and_sink_stays_usable() -> None:
    sink = io.BytesIO()
    writer = compression.compressing_writer("zstd", sink)
    writer.write(b"payload")
    writer.close()
    sink.write(b"TRAILER")  # the object format writes its seal after the payload
    assert sink.getvalue().endswith(b"TRAILER")


@pytest.mark.parametrize("name", compression.NAMES)
def test_check_accepts_known_names(name: str) -> None:
    """No level, the default level and both ends of the range pass (check returns, no error);
    the default lies inside the range, and a level accepted here compresses and decompresses."""
    low, high = compression.LEVEL_RANGES[name]
    default = compression.DEFAULT_LEVELS[name]
    assert low <= default <= high
    for level in (None, default, low, high):
        assert compression.check(name, level) is None
    assert decompress(name, compress(name, b"checked", default)) == b"checked"


@pytest.mark.parametrize("name", ["", "ZSTD", "brotli", "snappy", "lz4_frame", " zstd"])
def test_check_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown compression"):
        compression.check(name, None)


@pytest.mark.parametrize(
    ("name", "level"),
    [("zstd", 23), ("zstd", -8), ("lz4", -1), ("lz4", 17), ("gzip", 10), ("gzip", -1), ("none", 1)],
)
def test_check_rejects_out_of_range_levels(name: str, level: int) -> None:
    with pytest.raises(ConfigError, match=f"level {level} is out of range"):
        compression.check(name, level)


def test_writer_rejects_unknown_name_with_level() -> None:
    with pytest.raises(ConfigError):
        compression.compressing_writer("brotli", io.BytesIO(), 3)


def test_writer_rejects_unknown_name_without_level() -> None:
    with pytest.raises(ConfigError):
        compression.compressing_writer("brotli", io.BytesIO())


def test_reader_rejects_unknown_name() -> None:
    with pytest.raises(ConfigError):
        compression.decompressing_reader("brotli", io.BytesIO())


@pytest.mark.parametrize("name", ["zstd", "lz4", "gzip"])
def test_shrinks_tells_noise_from_text(name: str) -> None:
    noise, text = os.urandom(1 << 20), b"xcomstore " * 100_000
    assert not compression.shrinks(name, compression.sample_of(noise))
    assert compression.shrinks(name, compression.sample_of(text))
    assert not compression.shrinks("none", compression.sample_of(text))


def test_a_sample_spreads_over_the_data() -> None:
    """Noise between runs of one letter: a sample from the ends alone would see only the
    letter, one spread over the data sees mostly noise, as the data is."""
    data = b"a" * (1 << 20) + os.urandom(4 << 20) + b"a" * (1 << 20)
    sample = bytes(compression.sample_of(data))
    assert len(sample) < len(data) // 20
    assert sample[:16] == sample[-16:] == b"a" * 16
    assert sample.count(b"a") < len(sample) // 2
    assert bytes(compression.sample_of(b"small")) == b"small"
