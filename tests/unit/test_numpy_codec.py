"""NumPy arrays through a real XComStore: every dtype and memory order, every compression and
encryption; zstd's independent frames, hostile ones, and objects written before them."""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Callable
from pathlib import Path

import blake3
import numpy as np
import pytest
import zstandard

from xcomstore.codecs import NumpyCodec, numpy_zstd
from xcomstore.core.store import XComStore
from xcomstore.errors import ObjectFormatError
from xcomstore.format import container
from xcomstore.format.header import Header
from xcomstore.format.streams import BackgroundHash, BoundedReader, Budget, HashingReader
from xcomstore.identity import Origin
from xcomstore.ops.export import write_file
from xcomstore.ops.preview import preview

KEY = base64.b64encode(bytes(range(32))).decode()
_BIG = np.random.default_rng(7).standard_normal((1100, 1300))  # 11 MB: three zstd frames

ARRAYS: dict[str, Callable[[], np.ndarray]] = {
    "float64": lambda: np.array([1.5, np.nan, -np.inf, 0.0]),
    "int8": lambda: np.array([-128, 0, 127], dtype=np.int8),
    "bool": lambda: np.array([[True, False], [False, True]]),
    "complex128": lambda: np.array([1 + 2j, -3.5j]),
    "datetime64": lambda: np.array(["2024-01-01T00:00:00.000000001", "NaT"], dtype="datetime64[ns]"),
    "structured": lambda: np.array(
        [(1, 2.5, b"ab"), (-1, -0.0, b"")], dtype=[("i", "<i4"), ("f", ">f8"), ("s", "S2")]
    ),
    "void": lambda: np.array([b"\x00\x01\x02", b"abc"], dtype="V3"),
    "big-endian-f4": lambda: np.arange(7, dtype=">f4"),
    "unicode": lambda: np.array([["ab", "ç€"], ["", "xyz"]], dtype="<U3"),
    "fortran": lambda: np.asfortranarray(np.arange(24.0).reshape(4, 6)),
    "slice": lambda: np.arange(200).reshape(10, 20)[1:9:2, ::3],
    "0-d": lambda: np.array(2.5),
    "empty": lambda: np.zeros((3, 0), dtype=np.int32),
    "broadcast": lambda: np.broadcast_to(np.arange(5.0), (4, 5)),
    "big": lambda: _BIG,
    "big-fortran": lambda: np.asfortranarray(_BIG),
    "big-slice": lambda: _BIG[::2, 1::2],
    "big-structured": lambda: np.zeros(700_000, dtype=[("a", "<i8"), ("b", ">f4")]),
}


def _same(back: np.ndarray, value: np.ndarray) -> None:
    assert type(back) is np.ndarray
    assert (back.dtype, back.shape) == (value.dtype, value.shape)
    np.testing.assert_array_equal(back, value, strict=True)
    if value.ndim > 1 and value.flags.f_contiguous and not value.flags.c_contiguous:
        assert back.flags.f_contiguous  # Fortran order is kept; anything else comes back C
    else:
        assert back.flags.c_contiguous


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip", "none"])
def test_every_array_round_trips(
    make_xcom_store: Callable[..., XComStore], make_origin: Callable[..., Origin], compression: str
) -> None:
    store = make_xcom_store(threshold="0", compression=compression)
    for name, make in ARRAYS.items():
        value = make()
        stored = store.push(value, make_origin(key=name))
        assert stored["compression"] == compression
        _same(store.pull(stored), value)


def test_encrypted_arrays_round_trip(
    make_xcom_store: Callable[..., XComStore], make_origin: Callable[..., Origin]
) -> None:
    for compression in ("zstd", "none"):
        store = make_xcom_store(threshold="0", compression=compression, encryption_keys=f"k1:{KEY}")
        for name in ("big", "big-fortran", "structured", "unicode"):
            value = ARRAYS[name]()
            _same(store.pull(store.push(value, make_origin(key=f"{name}-{compression}"))), value)


def test_zstd_arrays_are_independent_frames(
    make_xcom_store: Callable[..., XComStore], make_origin: Callable[..., Origin]
) -> None:
    """The codec compresses the array itself: the object's stream is uncompressed, its meta
    says zstd, and the payload is the frames' magic, the .npy header, then 4 MiB frames."""
    store = make_xcom_store(threshold="0", compression="zstd")
    stored = store.push(_BIG, make_origin())
    header = store.head(stored["uri"])
    assert (header.compression, header.meta["compression"]) == ("none", "zstd")
    assert stored["size"] == len(_npy(_BIG))  # the size uncompressed, as for Arrow's own zstd
    with store.open_payload(stored["uri"]) as (_, payload):
        data = payload.read()
    assert data.startswith(numpy_zstd.MAGIC + b"\x93NUMPY")
    raw = [raw for raw, _ in _lengths(data)]
    assert raw == [4 << 20, 4 << 20, _BIG.nbytes - (8 << 20)]


def test_frames_zstd_would_not_shrink_by_an_eighth_are_stored_as_they_are(
    make_xcom_store: Callable[..., XComStore], make_origin: Callable[..., Origin]
) -> None:
    """Random float64 saves 4 % under zstd: stored raw (no compression, read straight into the
    array); a compressible array in the same push layout is compressed."""
    store = make_xcom_store(threshold="0", compression="zstd")
    compressible = np.repeat(np.arange(1100.0), 1300).reshape(1100, 1300)
    for value, stored in ((_BIG, True), (compressible, False)):
        ref = store.push(value, make_origin(key=f"stored-{stored}"))
        with store.open_payload(ref["uri"]) as (_, payload):
            lengths = _lengths(payload.read())
        assert [bool(length & numpy_zstd.STORED) for _, length in lengths] == [stored] * 3
        if not stored:
            assert sum(length for _, length in lengths) < value.nbytes / 8
        _same(store.pull(ref), value)


def test_arrays_of_the_first_frame_layout_still_read() -> None:
    """MAGIC_V1 payloads (every frame compressed) decode; a stored bit is refused in them."""
    frames = _frames_v1(VALUE, [(8000, _zstd(PLAIN))])
    _same(NumpyCodec().decode(io.BytesIO(frames), {}), VALUE)
    body = struct.pack(">II", 8000, 8000 | numpy_zstd.STORED) + PLAIN
    hostile = numpy_zstd.MAGIC_V1 + _npy(VALUE)[: len(_npy(VALUE)) - VALUE.nbytes] + body
    with pytest.raises(ObjectFormatError, match="claims 8000 bytes"):
        NumpyCodec().decode(io.BytesIO(hostile), {})


def _frames_v1(value: np.ndarray, frames: list[tuple[int, bytes]]) -> bytes:
    return numpy_zstd.MAGIC_V1 + _framed(value, frames)[len(numpy_zstd.MAGIC) :]


def test_arrays_written_before_the_frames_still_read(tmp_path: Path) -> None:
    """An object from an older xcomstore: a zstd stream around the plain .npy."""
    header = _header(NumpyCodec().describe(_BIG).meta, "zstd")
    sink = io.BytesIO()
    container.write_object(sink, header, lambda stream: NumpyCodec().encode(_BIG, stream, "none"))
    obj = container.open_object(io.BytesIO(sink.getvalue()), len(sink.getvalue()))
    back = container.decode_payload(obj, lambda s: NumpyCodec().decode(s, header.meta), None, Budget())
    _same(back, _BIG)


def test_preview_and_export_read_zstd_frames_as_npy(
    make_xcom_store: Callable[..., XComStore], make_origin: Callable[..., Origin], tmp_path: Path
) -> None:
    store = make_xcom_store(threshold="0", compression="zstd")
    value = ARRAYS["big-fortran"]()
    stored = store.push(value, make_origin())
    shown = preview(store, stored["uri"])
    assert shown.stats["shape"] == [1100, 1300]
    header = store.head(stored["uri"])
    write_file(store, stored["uri"], header, "npy", tmp_path / "value.npy")
    _same(np.load(tmp_path / "value.npy", allow_pickle=False), value)
    write_file(store, stored["uri"], header, "csv", tmp_path / "value.csv")
    assert (tmp_path / "value.csv").read_text().count("\n") >= 1100


# -- hostile frames: refused before zstd allocates or writes past the frame's slice -----------
def _npy(value: np.ndarray) -> bytes:
    sink = io.BytesIO()
    NumpyCodec().encode(value, sink, "none")
    return sink.getvalue()


def _lengths(data: bytes) -> list[tuple[int, int]]:
    """Each frame's raw length and length field (with its STORED bit)."""
    rest = data[len(numpy_zstd.MAGIC) + len(_npy(np.zeros((0, 0)))) :]
    found, at = [], 0
    while at < len(rest):
        raw, length = struct.unpack_from(">II", rest, at)
        found.append((raw, length))
        at += 8 + (length & ~numpy_zstd.STORED)
    return found


def _framed(value: np.ndarray, frames: list[tuple[int, bytes]] | list[tuple[int, bytes, bool]]) -> bytes:
    """The payload of `value` with these frames: (raw length, bytes[, stored])."""
    header = _npy(value)[: len(_npy(value)) - value.nbytes]
    body = b"".join(
        struct.pack(">II", frame[0], len(frame[1]) | (numpy_zstd.STORED if frame[2:] == (True,) else 0))
        + frame[1]
        for frame in frames
    )
    return numpy_zstd.MAGIC + header + body


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


VALUE = np.arange(1000.0)
PLAIN = VALUE.tobytes()


@pytest.mark.parametrize(
    ("frames", "refusal"),
    [
        ([(8000 + 8, _zstd(PLAIN + bytes(8)))], "claims 8008 bytes"),  # past the array
        ([(8000, b"\x00" * 10000)], "claims 8000 bytes in 10000"),  # over zstd's bound
        ([(8000, b"\x00" * 100)], "damaged"),  # not a zstd frame
        ([(8000, _zstd(PLAIN[:4000]))], "does not declare its 8000 bytes"),
        ([(4000, _zstd(PLAIN[:4000]))], "end early"),  # a frame missing
        ([(8000, zstandard.ZstdCompressor(write_content_size=False).compress(PLAIN))], "declare"),
        ([(4000, _zstd(PLAIN[:4000])), (4000, _zstd(bytes(64 << 20)))], "does not declare"),  # bomb
        ([(8000, _zstd(PLAIN)[:-5])], "frame"),  # truncated frame
        ([(0, b""), (8000, _zstd(PLAIN))], "claims 0 bytes"),
        ([(8000, PLAIN[:4000], True)], r"claims 8000 bytes in 4000 \(stored\)"),
        ([(8008, PLAIN + bytes(8), True)], r"claims 8008 bytes in 8008 \(stored\)"),
    ],
    ids=[
        "past-array",
        "over-bound",
        "garbage",
        "size-mismatch",
        "missing",
        "no-size",
        "bomb",
        "truncated",
        "empty",
        "stored-short",
        "stored-past-array",
    ],
)
def test_hostile_frames_are_refused(frames: list[tuple[int, bytes, bool]], refusal: str) -> None:
    payload = _framed(VALUE, frames)
    with pytest.raises(ObjectFormatError, match=refusal):
        NumpyCodec().decode(io.BytesIO(payload), {"dtype": "float64", "shape": [1000]})


def test_the_frames_fit_the_budget() -> None:
    """A payload that claims a larger array than its budget is refused before allocating."""
    payload = _framed(VALUE, [(8000, _zstd(PLAIN))])
    with pytest.raises(ObjectFormatError, match="limit of 4000"):
        NumpyCodec().decode(BoundedReader(io.BytesIO(payload), Budget(4000)), {})


# -- hashing without copies ------------------------------------------------------------------
def test_writable_chunks_are_hashed_in_order_after_queued_ones() -> None:
    data = np.random.default_rng(1).bytes(3 << 20)
    hashed = BackgroundHash("blake3")
    hashed.update(data[: 1 << 20])  # bytes: queued for the worker
    scratch = bytearray(data[1 << 20 : 2 << 20])
    hashed.update(memoryview(scratch))  # writable: hashed now, after the queued chunk
    scratch[:] = bytes(len(scratch))  # the caller reuses its buffer: the digest must not change
    hashed.update(memoryview(data[2 << 20 :]))
    assert hashed.digest() == blake3.blake3(data).digest()


def test_kept_reads_are_hashed_in_the_background() -> None:
    data = np.random.default_rng(2).bytes(5 << 20)
    reader = HashingReader(io.BytesIO(data), len(data), "blake3")
    target = bytearray(len(data))
    view = memoryview(target)
    for start in range(0, len(data), 1 << 20):
        assert reader.readinto_kept(view[start : start + (1 << 20)]) == 1 << 20
    assert reader.digest() == blake3.blake3(data).digest()
    assert bytes(target) == data


def _header(meta: dict[str, object], compression: str) -> Header:
    origin = Origin(dag_id="d", run_id="r", task_id="t", map_index=-1, key="k")
    return Header(
        codec="numpy",
        compression=compression,
        type_name="numpy.ndarray",
        summary="",
        origin=origin,
        created="2026-12-02T00:00:00+00:00",
        expires=None,
        meta=meta,
        producer={},
        encryption=None,
        checksum="blake3",
    )


@pytest.mark.parametrize("compression", ["gzip", "lz4"])
def test_an_export_of_a_damaged_stream_is_an_object_format_error(
    make_xcom_store: Callable[..., XComStore],
    make_origin: Callable[..., Origin],
    tmp_path: Path,
    compression: str,
) -> None:
    """The payload's first read (the .npy or frame magic) already decompresses: a damaged
    stream there is the object's fault, named as such, not a raw zlib or lz4 error."""
    store = make_xcom_store(threshold="0", compression=compression)
    stored = store.push(np.ones((300, 300), dtype=bool), make_origin())
    header = store.head(stored["uri"])
    path = Path(stored["uri"].removeprefix("file://"))
    data = bytearray(path.read_bytes())
    start = len(data) - stored["stored_bytes"] + container.PREFIX_SIZE + len(header.to_bytes())
    data[start + 12 : start + 16] = b"\xff\x00\xff\x00"  # inside the compressed stream's first block
    path.write_bytes(bytes(data))
    with pytest.raises(ObjectFormatError):
        write_file(store, stored["uri"], header, "npy", tmp_path / "value.npy")
