"""A read through a reference takes only the object the reference names: codec, compression,
type and expiry must agree with the object's header, whoever rewrote one or the other (a
bucket writer who reseals the object, an XCom editor who edits the row), on file and S3."""

from __future__ import annotations

import json
import struct
from typing import Any

import pandas as pd
import pytest
from tests.lifecycle.stores import Place, RawObjects, make_store, origin

from xcomstore.errors import CorruptObjectError
from xcomstore.format.container import PREFIX_SIZE, SEAL_MAGIC, SEAL_SIZE, object_digest, parse_prefix

VALUES: dict[str, Any] = {
    "bytes": b"payload " * 100,
    "json": {"rows": list(range(100))},
    "frame": pd.DataFrame({"a": range(100)}),
}


def resealed_with_header(data: bytes, change: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    """The object with header fields changed and both seal digests recomputed, as someone who
    can write to the store can do: the seal alone then vouches for nothing."""
    length = parse_prefix(data[:PREFIX_SIZE])
    header = json.loads(data[PREFIX_SIZE : PREFIX_SIZE + length])
    header.update(change)
    header["meta"].update(meta or {})
    raw = json.dumps(header).encode()
    head = data[:10] + struct.pack(">I", len(raw)) + raw
    payload, seal = data[PREFIX_SIZE + length : -SEAL_SIZE], data[-SEAL_SIZE:]
    payload_length, digest = struct.unpack(">Q32s", seal[:40])
    new_seal = struct.pack(
        ">Q32s32s8s", payload_length, digest, object_digest(head, payload_length, digest), SEAL_MAGIC
    )
    return head + payload + new_seal


@pytest.mark.parametrize(
    ("kind", "field", "forged"),
    [
        ("bytes", "codec", "json"),
        ("json", "codec", "bytes"),
        ("bytes", "type", "bytearray"),
        ("json", "compression", "none"),
    ],
)
def test_an_edited_reference_is_refused(place: Place, kind: str, field: str, forged: str) -> None:
    store = make_store([place.url], place.opener)
    stored = store.push(VALUES[kind], origin(key=kind))
    with pytest.raises(CorruptObjectError, match=f"differs from the reference in '{field}'") as info:
        store.pull({**stored, field: forged})
    assert info.value.uri == stored["uri"]


@pytest.mark.parametrize(
    ("kind", "change", "meta"),
    [
        ("bytes", {"type": "bytearray"}, {"class": "bytearray"}),
        ("frame", {"type": "pyarrow.Table"}, {"flavour": "pyarrow.Table"}),
        ("json", {"codec": "bytes", "type": "bytes"}, {}),
        ("bytes", {"expires": "2000-01-01T00:00:00.000+00:00"}, {}),
    ],
)
def test_a_resealed_header_is_refused_by_its_reference(
    place: Place, raw: RawObjects, kind: str, change: dict[str, Any], meta: dict[str, Any]
) -> None:
    store = make_store([place.url], place.opener)
    stored = store.push(VALUES[kind], origin(key=kind))
    raw.write(stored["uri"], resealed_with_header(raw.read(stored["uri"]), change, meta))
    assert store.verify(stored["uri"]), "the resealed object must be valid on its own"
    with pytest.raises(CorruptObjectError, match="differs from the reference"):
        store.pull(stored)


@pytest.mark.parametrize(
    ("kind", "meta"),
    [
        ("bytes", {"class": "bytearray"}),
        ("frame", {"flavour": "pyarrow.Table"}),
        ("frame", {"flavour": "polars.DataFrame"}),
    ],
)
def test_a_resealed_meta_cannot_change_the_type_of_the_value(
    place: Place, raw: RawObjects, kind: str, meta: dict[str, Any]
) -> None:
    store = make_store([place.url], place.opener)
    stored = store.push(VALUES[kind], origin(key=kind))
    raw.write(stored["uri"], resealed_with_header(raw.read(stored["uri"]), {}, meta))
    with pytest.raises(CorruptObjectError, match="the reference says"):
        store.pull(stored)
