"""Format version 3 authenticates the header: rewriting it (with its length fixed, payload and
seal left alone) is a CorruptObjectError, never a different value or a wrong expiry."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pytest
from tests.unit.sources import SOURCES

from xcomstore.codecs.json import JsonCodec
from xcomstore.codecs.registry import CodecRegistry
from xcomstore.core.store import XComStore
from xcomstore.errors import CorruptObjectError
from xcomstore.format import container
from xcomstore.format.container import (
    MAGIC,
    PREFIX_SIZE,
    SEAL_MAGIC,
    SEAL_SIZE,
    check_against,
    decode_payload,
    open_object,
    parse_prefix,
    sealed_header,
    verify_payload,
    write_object,
)
from xcomstore.format.encryption import Keyring
from xcomstore.format.header import Header
from xcomstore.identity import Origin
from xcomstore.ops.rekey import rekey

ORIGIN = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="return_value")
REGISTRY = CodecRegistry(JsonCodec())
KEYRING = Keyring((("k2", bytes(range(32))), ("k1", bytes(range(32, 64)))))


@pytest.fixture(params=list(SOURCES))
def source(request: pytest.FixtureRequest) -> Callable[[bytes], BinaryIO]:
    return SOURCES[request.param]


def store(value: Any, compression: str = "none", **fields: Any) -> bytes:
    """An object as a push writes it, with the codec the registry picks for `value`."""
    codec = REGISTRY.binary_for(value) or REGISTRY.json
    described = codec.describe(value)
    values: dict[str, Any] = {
        "codec": codec.name,
        "compression": compression,
        "type_name": described.type_name,
        "summary": described.summary,
        "origin": ORIGIN,
        "created": "2026-01-01T00:00:00+00:00",
        "meta": described.meta,
    }
    values.update(fields)
    payload = REGISTRY.json.dumps(value)[1] if codec is REGISTRY.json else value  # as a push does
    sink = io.BytesIO()

    def encode(stream: BinaryIO) -> None:
        codec.encode(payload, stream, "none")

    write_object(sink, Header(**values), encode, keyring=KEYRING)
    return sink.getvalue()


def pull(data: bytes, source: Callable[[bytes], BinaryIO]) -> Any:
    obj = open_object(source(data), len(data))
    codec = REGISTRY.by_name(obj.header.codec)
    return decode_payload(obj, lambda s: codec.decode(s, obj.header.meta), KEYRING)


def rewrite_header(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """The object with its header JSON edited and its length fixed; payload and seal unchanged."""
    length = parse_prefix(data[:PREFIX_SIZE])
    doc = json.loads(data[PREFIX_SIZE : PREFIX_SIZE + length])
    change(doc)
    raw = json.dumps(doc).encode()
    return data[:8] + data[8:10] + struct.pack(">I", len(raw)) + raw + data[PREFIX_SIZE + length :]


def _set(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.update(fields)


def _set_meta(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc["meta"].update(fields)


TAMPERINGS: dict[str, tuple[Any, dict[str, Any], Callable[[dict[str, Any]], Any]]] = {
    "compression-zstd-to-none": (b"x" * 5000, {"compression": "zstd"}, _set(compression="none")),
    "class-bytes-to-bytearray": (b"payload", {}, _set_meta(**{"class": "bytearray"})),
    "flavour-pandas-to-pyarrow": (pd.DataFrame({"a": [1, 2]}), {}, _set_meta(flavour="pyarrow.Table")),
    "codec-json-to-bytes": ({"rows": [1, 2]}, {}, _set(codec="bytes")),
    "expires-in-the-past": (b"live", {}, _set(expires="2000-01-01T00:00:00+00:00")),
    "encryption-removed": (b"secret", {"encryption": KEYRING.new_params()}, lambda d: d.pop("encryption")),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_a_rewritten_header_is_corruption(name: str, source: Callable[[bytes], BinaryIO]) -> None:
    value, fields, change = TAMPERINGS[name]
    data = store(value, **fields)
    assert _same(pull(data, source), value)
    tampered = rewrite_header(data, change)
    with pytest.raises(CorruptObjectError, match=r"header or payload was modified|checksum mismatch"):
        pull(tampered, source)
    with pytest.raises(CorruptObjectError):
        verify_payload(open_object(source(tampered), len(tampered)), KEYRING)
    with pytest.raises(CorruptObjectError, match="header or payload was modified"):
        sealed_header(tampered[: PREFIX_SIZE + 4096], tampered[-SEAL_SIZE:], len(tampered))


def _same(got: Any, value: Any) -> bool:
    if isinstance(value, pd.DataFrame):
        return isinstance(got, pd.DataFrame) and bool(got.equals(value))
    return type(got) is type(value) and bool(got == value)


def test_seekable_object_with_rewritten_header_is_refused_before_decoding() -> None:
    data = rewrite_header(store(b"x" * 100), _set_meta(**{"class": "bytearray"}))
    with pytest.raises(CorruptObjectError, match="header or payload was modified"):
        open_object(io.BytesIO(data), len(data))


def test_a_rewritten_header_is_refused_before_the_decoder_sees_it(
    source: Callable[[bytes], BinaryIO],
) -> None:
    """A header edit that makes the decoder fail is reported by the seal, not the decoder."""
    data = rewrite_header(store(pa.table({"a": [1, 2]})), _set(codec="numpy"))
    with pytest.raises(CorruptObjectError, match="header or payload was modified"):
        pull(data, source)


def test_header_is_authenticated_from_version_3(source: Callable[[bytes], BinaryIO]) -> None:
    data = store(b"x")
    obj = open_object(source(data), len(data))
    decode_payload(obj, lambda s: s.read(), KEYRING)
    assert obj.header_authenticated
    header, authenticated = sealed_header(data[:4096], data[-SEAL_SIZE:], len(data))
    assert authenticated
    assert header == obj.header


# -- versions 1 and 2: readable, their header unauthenticated -------------------------------
PAYLOAD = b"The quick brown fox jumps over the lazy dog. " * 40


def older_object(version: int, payload: bytes = PAYLOAD) -> bytes:
    """An object as xcomstore wrote it before version 3: a 48-byte seal, no object digest;
    version 1 has no "checksum" field and is sha256."""
    doc = json.loads(
        Header("bytes", "none", "bytes", "bytes", ORIGIN, "2024-05-01T12:00:00+00:00").to_bytes()
    )
    if version == 1:
        del doc["checksum"]
        digest = hashlib.sha256(payload).digest()
    else:
        from blake3 import blake3

        digest = blake3(payload).digest()
    header = json.dumps(doc).encode()
    prefix = struct.pack(">8sHI", MAGIC, version, len(header))
    return prefix + header + payload + struct.pack(">Q32s8s", len(payload), digest, SEAL_MAGIC)


@pytest.mark.parametrize("version", [1, 2])
def test_older_versions_stay_readable_unauthenticated(
    version: int, source: Callable[[bytes], BinaryIO]
) -> None:
    data = older_object(version)
    obj = open_object(source(data), len(data))
    assert decode_payload(obj, lambda s: s.read()) == PAYLOAD
    assert not obj.header_authenticated
    header, authenticated = sealed_header(data[:4096], data[-48:], len(data))
    assert not authenticated
    assert header.codec == "bytes"
    # Their header can be rewritten undetected: hence header_authenticated, for gc to look at.
    tampered = rewrite_header(data, _set(expires="2000-01-01T00:00:00+00:00"))
    obj = open_object(source(tampered), len(tampered))
    assert decode_payload(obj, lambda s: s.read()) == PAYLOAD
    assert not obj.header_authenticated


# -- the reference against the header -------------------------------------------------------
def test_check_against_names_the_field_that_differs() -> None:
    data = store({"rows": [1]}, expires="2030-01-01T00:00:00+00:00")
    header = open_object(io.BytesIO(data), len(data)).header
    reference = {
        "codec": "json",
        "compression": "none",
        "type": "dict",
        "summary": header.summary,
        "expires": "2030-01-01T00:00:00+00:00",
        "checksum": "blake3:" + "00" * 32,
        "size": 12,  # not a header fact: ignored
    }
    check_against(header, reference)
    for name, other in [
        ("codec", "bytes"),
        ("compression", "zstd"),
        ("type", "list"),
        ("expires", None),
        ("checksum", "sha256:" + "00" * 32),
    ]:
        with pytest.raises(CorruptObjectError, match=repr(name)):
            check_against(header, {**reference, name: other})


def test_check_against_reads_a_native_compression_from_meta() -> None:
    data = store(b"x", meta={"compression": "zstd"})
    header = open_object(io.BytesIO(data), len(data)).header
    check_against(header, {"compression": "zstd", "codec": "bytes"})
    with pytest.raises(CorruptObjectError, match="'compression'"):
        check_against(header, {"compression": "none"})


def test_object_digest_is_domain_separated() -> None:
    """The object digest is not the SHA-256 of the same bytes without the domain."""
    data = store(b"x")
    seal = container.parse_seal(data[-SEAL_SIZE:])
    head = data[: PREFIX_SIZE + parse_prefix(data[:PREFIX_SIZE])]
    plain = hashlib.sha256(head + struct.pack(">Q", seal.length) + seal.digest).digest()
    assert seal.object_digest == container.object_digest(head, seal.length, seal.digest) != plain


# -- rekey ------------------------------------------------------------------------------------
def _as_version_2(path: Path) -> None:
    """Rewrite a stored object as version 2 wrote it: same header and payload, 48-byte seal."""
    data = path.read_bytes()
    seal = data[-SEAL_SIZE:]
    older = data[:8] + struct.pack(">H", 2) + data[10:-SEAL_SIZE] + seal[:40] + seal[-8:]
    path.write_bytes(older)


def test_rekey_writes_version_3_and_keeps_references_valid(
    make_xcom_store: Callable[..., XComStore], store_dir: Path, make_origin: Callable[..., Origin]
) -> None:
    old_key, new_key = (base64.b64encode(bytes(range(n, n + 32))).decode() for n in (0, 100))
    old = make_xcom_store(threshold="0", encryption_keys=f"k1:{old_key}")
    refs = {key: old.push({"key": key, "rows": list(range(50))}, make_origin(key=key)) for key in ("a", "b")}
    plain = make_xcom_store(threshold="0").push(b"plain" * 100, make_origin(key="plain"))
    _as_version_2(store_dir / refs["b"]["uri"].removeprefix(f"file://{store_dir}/"))
    assert old.pull(refs["b"]) == {"key": "b", "rows": list(range(50))}  # version 2 still reads

    rotated = make_xcom_store(threshold="0", encryption_keys=f"k2:{new_key}, k1:{old_key}")
    summary = rekey(rotated)
    assert summary.errors == []
    assert len(summary.rewritten) == 3

    only_new = make_xcom_store(threshold="0", encryption_keys=f"k2:{new_key}")
    for key, stored in refs.items():
        assert only_new.pull(stored) == {"key": key, "rows": list(range(50))}, "a reference broke"
    assert only_new.pull(plain) == b"plain" * 100
    for stored in (*refs.values(), plain):
        path = store_dir / stored["uri"].removeprefix(f"file://{store_dir}/")
        data = path.read_bytes()
        assert struct.unpack_from(">H", data, 8)[0] == 3
        header, authenticated = sealed_header(data[:4096], data[-SEAL_SIZE:], len(data))
        assert authenticated
        assert (header.encryption or {}).get("key_id") == "k2"
        # The rewritten header is authenticated like any new one.
        path.write_bytes(rewrite_header(data, _set(expires="2000-01-01T00:00:00+00:00")))
        with pytest.raises(CorruptObjectError, match="header or payload was modified"):
            only_new.pull(stored)
