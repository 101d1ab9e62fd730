"""The object container: header + payload + seal, and refusing every malformed object cleanly."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from collections.abc import Callable
from datetime import timedelta
from typing import Any, BinaryIO

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests.unit.sources import SOURCES

from xcomstore.errors import (
    ConfigError,
    CorruptObjectError,
    MissingKeyError,
    ObjectFormatError,
    XComStoreError,
)
from xcomstore.format import checksum, compression
from xcomstore.format.container import (
    FORMAT_VERSION,
    MAGIC,
    MAX_HEADER_SIZE,
    PREFIX_SIZE,
    SEAL_MAGIC,
    SEAL_SIZE,
    STREAM_VERSION,
    OpenObject,
    Seal,
    decode_payload,
    open_object,
    parse_prefix,
    parse_seal,
    verify_payload,
    write_object,
)
from xcomstore.format.encryption import ALGORITHM, TAG_SIZE, Keyring
from xcomstore.format.header import Header
from xcomstore.identity import Origin

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),  # a hang fails the test instead of stalling the suite
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ORIGIN = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="return_value")
PAYLOAD = b"The quick brown fox jumps over the lazy dog. " * 40


def make_header(compression_name: str = "none", **fields: Any) -> Header:
    values: dict[str, Any] = {
        "codec": "bytes",
        "compression": compression_name,
        "type_name": "bytes",
        "summary": "bytes of 1800 B",
        "origin": ORIGIN,
        "created": "2024-05-01T12:00:00.000+00:00",
    }
    values.update(fields)
    return Header(**values)


def build(
    payload: bytes = PAYLOAD,
    header: Header | None = None,
    level: int | None = None,
    keyring: Keyring | None = None,
) -> bytes:
    sink = io.BytesIO()
    write_object(
        sink, header or make_header(), lambda stream: stream.write(payload), level=level, keyring=keyring
    )
    return sink.getvalue()


_source = ["seekable"]


@pytest.fixture(autouse=True, scope="module", params=list(SOURCES))
def source_kind(request: pytest.FixtureRequest) -> str:
    """Every test here runs on a seekable source (seal read first) and a streamed one (seal
    read after the payload)."""
    _source[0] = request.param
    return str(request.param)


def open_bytes(data: bytes, size: int | None = None) -> OpenObject:
    return open_object(SOURCES[_source[0]](data), len(data) if size is None else size)


def read_back(data: bytes, keyring: Keyring | None = None) -> bytes:
    obj = open_bytes(data)
    return bytes(decode_payload(obj, lambda stream: stream.read(), keyring))


def payload_span(data: bytes) -> tuple[int, int]:
    header_length = parse_prefix(data[:PREFIX_SIZE])
    return PREFIX_SIZE + header_length, len(data) - SEAL_SIZE


def flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0xFF
    return bytes(changed)


# One valid object per compression, the seeds of the mutation fuzzing.
VALID = {name: build(header=make_header(name)) for name in compression.NAMES}
KEYRING = Keyring((("k2", bytes(range(32))), ("k1", bytes(range(32, 64)))))
ENCRYPTED = {
    name: build(header=make_header(name, encryption=KEYRING.new_params()), keyring=KEYRING)
    for name in compression.NAMES
}


# -- round trip ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", compression.NAMES)
@pytest.mark.parametrize("payload", [b"", PAYLOAD], ids=["empty", "text"])
def test_round_trip(name: str, payload: bytes) -> None:
    header = make_header(name)
    sink = io.BytesIO()
    seal = write_object(sink, header, lambda stream: stream.write(payload))
    data = sink.getvalue()
    obj = open_bytes(data)
    assert obj.header == header
    assert decode_payload(obj, lambda stream: stream.read()) == payload
    assert obj.seal == seal
    assert len(data) == PREFIX_SIZE + len(header.to_bytes()) + seal.length + SEAL_SIZE


def test_compression_level_is_used() -> None:
    header = make_header("zstd")
    fast, small = build(header=header, level=1), build(header=header, level=19)
    assert read_back(fast) == read_back(small) == PAYLOAD


def test_header_fields_survive() -> None:
    header = make_header(
        "gzip",
        codec="arrow",
        type_name="pandas.DataFrame",
        summary="DataFrame 3×2 — ünïcödé",
        origin=Origin(
            dag_id="d/ag",
            run_id="manual__2024-01-01T00:00:00+00:00",
            task_id="t.1",
            map_index=7,
            key="k ey/ü",
        ),
        expires="2024-06-01T00:00:00+00:00",
        meta={"flavour": "pandas.DataFrame", "rows": 3, "nested": {"list": [1, None, "x"]}},
        producer={"xcomstore": "0.1.0", "python": "3.11"},
    )
    data = build(header=header)
    assert open_bytes(data).header == header
    source = io.BytesIO(data)
    assert open_object(source, len(data)).header == header
    assert source.tell() == payload_span(data)[0], "open_object leaves the source at the payload"


def test_prefix_and_seal_layout() -> None:
    data = build()
    magic, version, header_length = struct.unpack(">8sHI", data[:PREFIX_SIZE])
    assert (magic, version) == (MAGIC, STREAM_VERSION)
    assert json.loads(data[PREFIX_SIZE : PREFIX_SIZE + header_length])["origin"] == ORIGIN.to_json()
    assert data.endswith(SEAL_MAGIC)
    assert parse_seal(data[-SEAL_SIZE:]).length == len(PAYLOAD)


def test_origin_text() -> None:
    assert str(ORIGIN) == "dag/run/task/return_value"
    assert str(Origin(dag_id="d", run_id="r", task_id="t", map_index=3, key="k")) == "d/r/t[3]/k"


# -- damage ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", compression.NAMES)
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
def test_flipped_payload_byte_is_corruption(name: str, where: float) -> None:
    data = VALID[name]
    start, end = payload_span(data)
    damaged = flip(data, start + int((end - start - 1) * where))
    with pytest.raises(CorruptObjectError):
        read_back(damaged)
    with pytest.raises(CorruptObjectError):
        verify_payload(open_bytes(damaged))


def test_flipped_checksum_is_corruption() -> None:
    damaged = flip(VALID["none"], len(VALID["none"]) - SEAL_SIZE + 8)
    with pytest.raises(CorruptObjectError, match="checksum"):
        read_back(damaged)


def test_checksum_covers_what_the_decoder_leaves_unread() -> None:
    damaged = flip(VALID["none"], payload_span(VALID["none"])[1] - 1)
    with pytest.raises(CorruptObjectError):
        decode_payload(open_bytes(damaged), lambda stream: stream.read(1))


def test_intact_payload_that_fails_to_decode() -> None:
    def decode(stream: BinaryIO) -> Any:
        raise ValueError("no good")

    with pytest.raises(ObjectFormatError, match="could not be decoded: ValueError: no good") as info:
        decode_payload(open_bytes(VALID["zstd"]), decode)
    assert not isinstance(info.value, CorruptObjectError)


@pytest.mark.parametrize("name", compression.NAMES)
def test_verify_intact_object(name: str) -> None:
    """An intact object passes (no error), and verifying read the whole payload: at most the
    seal is left unread."""
    data = VALID[name]
    source = SOURCES[_source[0]](data)
    assert verify_payload(open_object(source, len(data))) is None
    assert source.read() in (b"", data[-SEAL_SIZE:])


CUTS: dict[
    str, Callable[[int, int, int], int]
] = {  # where to cut an object, from its payload span (start, end) and its size
    "empty": lambda start, end, size: 0,
    "in-magic": lambda start, end, size: 3,
    "in-prefix": lambda start, end, size: PREFIX_SIZE - 1,
    "after-prefix": lambda start, end, size: PREFIX_SIZE,
    "in-header": lambda start, end, size: PREFIX_SIZE + 5,
    "end-of-header": lambda start, end, size: start - 1,
    "payload-start": lambda start, end, size: start,
    "in-payload": lambda start, end, size: (start + end) // 2,
    "before-seal": lambda start, end, size: end,
    "in-seal": lambda start, end, size: end + 20,
    "last-byte-missing": lambda start, end, size: size - 1,
}


@pytest.mark.parametrize("name", compression.NAMES)
@pytest.mark.parametrize("where", CUTS)
def test_truncated_object(name: str, where: str) -> None:
    data = VALID[name]
    cut = CUTS[where](*payload_span(data), len(data))
    with pytest.raises(ObjectFormatError):
        read_back(data[:cut])


def test_size_claimed_larger_than_stream() -> None:
    data = VALID["none"]
    with pytest.raises(ObjectFormatError):
        verify_payload(open_bytes(data[:-10], len(data)))


@pytest.mark.parametrize(
    ("reshape", "message"),
    [
        pytest.param(
            lambda d: d[: -SEAL_SIZE - 10] + d[-SEAL_SIZE:], "truncated or padded", id="payload-shortened"
        ),
        pytest.param(
            lambda d: d[:-SEAL_SIZE] + b"x" + d[-SEAL_SIZE:], "truncated or padded", id="payload-grown"
        ),
        pytest.param(lambda d: d + b"\0", "seal is missing", id="padded-after-seal"),
    ],
)
def test_length_mismatch(reshape: Any, message: str) -> None:
    with pytest.raises(ObjectFormatError, match=message):
        read_back(reshape(VALID["none"]))


@pytest.mark.parametrize(
    "data",
    [b"XCOMSTOX" + VALID["none"][8:], b"\0" * 100, b"PK\x03\x04" + b"\0" * 60, b"{}" * 40],
    ids=["one-byte-off", "zeros", "zip", "json"],
)
def test_bad_magic(data: bytes) -> None:
    with pytest.raises(ObjectFormatError, match="bad magic"):
        open_bytes(data)


def test_future_version_asks_for_upgrade() -> None:
    data = bytearray(VALID["none"])
    struct.pack_into(">H", data, len(MAGIC), FORMAT_VERSION + 1)
    with pytest.raises(ObjectFormatError, match="upgrade"):
        open_bytes(bytes(data))


def test_new_objects_are_version_3_and_sealed_with_blake3() -> None:
    """Objects of one payload stream; tables laid out as blocks are version 4 (test_blocks.py)."""
    data = VALID["none"]
    assert struct.unpack_from(">H", data, len(MAGIC))[0] == STREAM_VERSION == 3
    assert open_bytes(data).header.checksum == "blake3"
    assert parse_seal(data[-SEAL_SIZE:]).digest == blake3(PAYLOAD).digest()


def test_sha256_objects_round_trip() -> None:
    data = build(header=make_header(checksum="sha256"))
    assert parse_seal(data[-SEAL_SIZE:]).digest == hashlib.sha256(PAYLOAD).digest()
    assert open_bytes(data).header.checksum == "sha256"
    assert read_back(data) == PAYLOAD
    start, _ = payload_span(data)
    with pytest.raises(CorruptObjectError, match="checksum mismatch"):
        read_back(flip(data, start + 3))


def version_1_object(payload: bytes = PAYLOAD) -> bytes:
    """An object as xcomstore wrote before BLAKE3: version 1, no "checksum" field, sha256."""
    doc = json.loads(make_header().to_bytes())
    del doc["checksum"]
    header = json.dumps(doc).encode()
    digest = hashlib.sha256(payload).digest()
    prefix = struct.pack(">8sHI", MAGIC, 1, len(header))
    return prefix + header + payload + struct.pack(">Q32s8s", len(payload), digest, SEAL_MAGIC)


def test_version_1_objects_stay_readable_as_sha256() -> None:
    data = version_1_object()
    obj = open_bytes(data)
    assert obj.header.checksum == "sha256"
    assert read_back(data) == PAYLOAD
    start, _ = payload_span(data)
    with pytest.raises(CorruptObjectError, match="checksum mismatch"):
        read_back(flip(data, start))


def test_expected_checksum_names_its_algorithm() -> None:
    """A digest is only a match under the algorithm the reference names."""
    data = VALID["none"]
    digest = parse_seal(data[-SEAL_SIZE:]).digest

    def read_expecting(expected: str) -> Any:
        obj = open_object(SOURCES[_source[0]](data), len(data), expected)
        return decode_payload(obj, lambda stream: stream.read())

    assert read_expecting(checksum.label("blake3", digest)) == PAYLOAD
    with pytest.raises(CorruptObjectError, match="differs from the reference"):
        read_expecting(checksum.label("sha256", digest))


def test_version_zero_is_corrupt() -> None:
    with pytest.raises(ObjectFormatError, match="corrupt object prefix"):
        parse_prefix(struct.pack(">8sHI", MAGIC, 0, 10))


class RecordingSource(io.BytesIO):
    """A BytesIO that remembers how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.requests: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(size)
        assert size is not None, "unbounded read()"
        assert 0 <= size <= MAX_HEADER_SIZE, f"unbounded read({size})"
        return super().read(size)


def test_oversized_header_refused_without_reading_it() -> None:
    prefix = struct.pack(">8sHI", MAGIC, FORMAT_VERSION, MAX_HEADER_SIZE + 1)
    source = RecordingSource(prefix + b"{" * 64)
    with pytest.raises(ObjectFormatError, match="corrupt object prefix"):
        open_object(source, len(source.getvalue()))
    assert source.requests == [PREFIX_SIZE]
    with pytest.raises(ObjectFormatError):
        parse_prefix(struct.pack(">8sHI", MAGIC, FORMAT_VERSION, 0xFFFFFFFF))


def test_header_at_the_limit_is_read() -> None:
    assert parse_prefix(struct.pack(">8sHI", MAGIC, FORMAT_VERSION, MAX_HEADER_SIZE)) == MAX_HEADER_SIZE


def test_seal_length_beyond_object() -> None:
    data = bytearray(VALID["none"])
    struct.pack_into(">Q", data, len(data) - SEAL_SIZE, 2**64 - 1)
    with pytest.raises(ObjectFormatError, match="truncated or padded"):
        read_back(bytes(data))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe{", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"{}", "'codec'"),
    ],
)
def test_header_not_a_header(raw: bytes, message: str) -> None:
    with pytest.raises(ObjectFormatError, match=message):
        Header.from_bytes(raw)


def _doc(**changes: Any) -> bytes:
    doc = json.loads(make_header().to_bytes())
    for name, value in changes.items():
        if value is ...:
            del doc[name]
        else:
            doc[name] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "raw",
    [
        _doc(codec=...),
        _doc(codec=1),
        _doc(compression="brotli"),
        _doc(compression=None),
        _doc(type=[]),
        _doc(summary=None),
        _doc(created=0),
        _doc(expires=5),
        _doc(meta=[]),
        _doc(producer="x"),
        _doc(checksum="md5"),
        _doc(checksum=None),
        _doc(checksum=["blake3"]),
        _doc(origin=...),
        _doc(origin="dag/run"),
        _doc(origin={"dag_id": "d", "run_id": "r", "task_id": "t", "key": "k"}),
        _doc(origin={"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": "1", "key": "k"}),
        _doc(origin={"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": True, "key": "k"}),
        _doc(origin={"dag_id": 1, "run_id": "r", "task_id": "t", "map_index": 1, "key": "k"}),
    ],
)
def test_header_with_bad_fields(raw: bytes) -> None:
    with pytest.raises(ObjectFormatError):
        Header.from_bytes(raw)


def test_header_optional_fields_default() -> None:
    header = Header.from_bytes(_doc(expires=..., meta=..., producer=...))
    assert (header.expires, dict(header.meta), dict(header.producer)) == (None, {}, {})


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"codec":' + b"1" * 5000 + b"}"],
    ids=["deeply-nested", "huge-integer"],
)
def test_header_pathological_json(raw: bytes) -> None:
    with pytest.raises(ObjectFormatError):
        Header.from_bytes(raw)


# -- encryption ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", compression.NAMES)
def test_encrypted_round_trip(name: str) -> None:
    data = ENCRYPTED[name]
    header = open_bytes(data).header
    assert header.encryption is not None
    assert (header.encryption["alg"], header.encryption["key_id"]) == (ALGORITHM, "k2")
    assert read_back(data, KEYRING) == PAYLOAD
    verify_payload(open_bytes(data), KEYRING)
    assert b"quick brown fox" not in data


def test_encrypted_checksum_covers_the_plaintext() -> None:
    plain_seal, secret_seal = (
        parse_seal(VALID["none"][-SEAL_SIZE:]),
        parse_seal(ENCRYPTED["none"][-SEAL_SIZE:]),
    )
    assert secret_seal.digest == plain_seal.digest
    assert secret_seal.length == plain_seal.length + TAG_SIZE


def test_each_object_gets_its_own_nonce() -> None:
    first, second = KEYRING.new_params(), KEYRING.new_params()
    assert first["nonce"] != second["nonce"]
    assert len(bytes.fromhex(first["nonce"])) == 12


def test_older_key_still_decrypts() -> None:
    data = build(
        header=make_header("zstd", encryption={**KEYRING.new_params(), "key_id": "k1"}), keyring=KEYRING
    )
    rotated = Keyring((("k3", bytes(32)), *KEYRING.keys[1:]))
    assert read_back(data, rotated) == PAYLOAD


@pytest.mark.parametrize("keyring", [None, Keyring(), Keyring((("k1", bytes(range(32, 64))),))])
def test_missing_key(keyring: Keyring | None) -> None:
    with pytest.raises(MissingKeyError, match="'k2'"):
        read_back(ENCRYPTED["zstd"], keyring)
    assert issubclass(MissingKeyError, ConfigError), "a missing key is a setting to fix, not a damaged copy"


def test_wrong_key_fails_authentication() -> None:
    impostor = Keyring((("k2", bytes(32)),))
    with pytest.raises(CorruptObjectError):
        read_back(ENCRYPTED["none"], impostor)


@pytest.mark.parametrize("where", ["first-ciphertext", "last-ciphertext", "tag"])
def test_tampered_ciphertext(where: str) -> None:
    data = ENCRYPTED["none"]
    start, end = payload_span(data)
    position = {"first-ciphertext": start, "last-ciphertext": end - TAG_SIZE - 1, "tag": end - 3}[where]
    with pytest.raises(CorruptObjectError):
        read_back(flip(data, position), KEYRING)
    with pytest.raises(CorruptObjectError):
        verify_payload(open_bytes(flip(data, position)), KEYRING)


@pytest.mark.parametrize(
    "params",
    [
        {"alg": "ROT13", "key_id": "k2", "nonce": "00" * 12},
        {"alg": ALGORITHM, "key_id": "k2", "nonce": "00" * 11},
        {"alg": ALGORITHM, "key_id": "k2", "nonce": "not hex"},
        {"alg": ALGORITHM, "key_id": "k2"},
    ],
    ids=["unknown-algorithm", "short-nonce", "bad-nonce", "no-nonce"],
)
def test_bad_encryption_header(params: dict[str, str]) -> None:
    # A plain object's payload and seal, behind a header asking for an encryption it cannot have.
    head = make_header("none", encryption=params).to_bytes()
    body = VALID["none"][payload_span(VALID["none"])[0] :]
    data = struct.pack(">8sHI", MAGIC, STREAM_VERSION, len(head)) + head + body
    with pytest.raises(ObjectFormatError):
        read_back(data, KEYRING)


# -- fuzzing ---------------------------------------------------------------------------------
def _fails_cleanly(call: Any, *args: Any) -> Any:
    """The result of `call`, or None if it raised one of the project's own errors."""
    try:
        return call(*args)
    except XComStoreError:
        return None


@FUZZ
@given(st.binary(max_size=64))
@example(struct.pack(">8sHI", MAGIC, 1, 0))
@example(struct.pack(">8sHI", MAGIC, 65535, 2**32 - 1))
def test_fuzz_parse_prefix(raw: bytes) -> None:
    length = _fails_cleanly(parse_prefix, raw)
    assert length is None or 0 <= length <= MAX_HEADER_SIZE


@FUZZ
@given(st.binary(max_size=96) | st.binary(min_size=40, max_size=40).map(lambda b: b + SEAL_MAGIC))
def test_fuzz_parse_seal(raw: bytes) -> None:
    seal = _fails_cleanly(parse_seal, raw)
    assert seal is None or (isinstance(seal, Seal) and len(seal.digest) == 32)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
HEADER_FIELDS = (
    "codec",
    "compression",
    "type",
    "summary",
    "origin",
    "created",
    "expires",
    "meta",
    "producer",
    "checksum",
)
ORIGIN_FIELDS = ("dag_id", "run_id", "task_id", "map_index", "key")
HEADERISH = st.dictionaries(
    st.sampled_from(HEADER_FIELDS),
    JSON
    | st.sampled_from(compression.NAMES + checksum.NAMES)
    | st.dictionaries(st.sampled_from(ORIGIN_FIELDS), st.text(max_size=5) | st.integers(), max_size=5),
)


@FUZZ
@given(
    st.binary(max_size=300)
    | JSON.map(lambda v: json.dumps(v).encode())
    | HEADERISH.map(lambda d: json.dumps(d).encode())
)
@example(make_header().to_bytes())
def test_fuzz_header_from_bytes(raw: bytes) -> None:
    header = _fails_cleanly(Header.from_bytes, raw)
    assert header is None or isinstance(header, Header)


TEXT = st.text(max_size=30)


@FUZZ
@given(
    st.builds(
        Header,
        codec=TEXT,
        compression=st.sampled_from(compression.NAMES),
        type_name=TEXT,
        summary=TEXT,
        origin=st.builds(
            Origin, dag_id=TEXT, run_id=TEXT, task_id=TEXT, map_index=st.integers(-1, 2**40), key=TEXT
        ),
        created=TEXT,
        expires=st.none() | TEXT,
        meta=st.dictionaries(st.text(max_size=5), JSON, max_size=3),
        producer=st.dictionaries(TEXT, TEXT, max_size=3),
        checksum=st.sampled_from(checksum.NAMES),
    )
)
def test_fuzz_header_round_trip(header: Header) -> None:
    assert Header.from_bytes(header.to_bytes()) == header


def _open_and_read(data: bytes) -> Any:
    source = RecordingSource(data) if _source[0] == "seekable" else SOURCES["streamed"](data)
    obj = _fails_cleanly(open_object, source, len(data))
    if obj is None:
        return None
    assert isinstance(obj, OpenObject)
    return obj, _fails_cleanly(decode_payload, obj, lambda stream: stream.read(), KEYRING)


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_open_object_arbitrary_bytes(data: bytes) -> None:
    """Arbitrary bytes, alone or after a valid prefix, fail with one of the project's errors
    (nothing else escapes) and never decode to a value: no seal matches them."""
    for raw in (data, VALID["none"][:PREFIX_SIZE] + data):  # the second: valid prefix, garbage after
        outcome = _open_and_read(raw)
        assert outcome is None or outcome[1] is None, f"{raw!r} decoded to {outcome[1]!r}"


@st.composite
def mutated_objects(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(compression.NAMES))
    data = bytearray(draw(st.sampled_from([VALID[name], ENCRYPTED[name]])))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "overwrite"]))
        if not data and kind != "insert":
            continue
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
    return name, bytes(data)


@FUZZ
@given(mutated_objects())
def test_fuzz_open_object_mutations(mutation: tuple[str, bytes]) -> None:
    name, data = mutation
    outcome = _open_and_read(data)
    if outcome is None:
        return
    obj, value = outcome
    if value is not None and obj.header.compression == name:
        assert value == PAYLOAD, "a damaged object must never decode to a different value"
