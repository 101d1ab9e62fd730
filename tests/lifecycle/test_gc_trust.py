"""gc acts on what a header says only when the seal authenticates it: a rewritten expiry never
deletes a live object, on the file store and on the S3 server."""

from __future__ import annotations

import json
import struct
import time
from typing import Any

from tests.lifecycle.stores import Place, RawObjects, make_store, origin

from xcomstore.format.container import MAGIC, PREFIX_SIZE, SEAL_SIZE, parse_prefix
from xcomstore.ops.gc import collect
from xcomstore.ops.liveness import LiveXComs

PAST = "2000-01-01T00:00:00.000+00:00"
LATER = 2 * 3600.0  # past the default grace period


def with_header(data: bytes, change: dict[str, Any], version: int | None = None) -> bytes:
    """`data` with header fields changed and its length fixed; payload and seal untouched (with
    `version` 2, the seal cut to the 48 bytes of a version 2 object, as one written before)."""
    length = parse_prefix(data[:PREFIX_SIZE])
    header = json.loads(data[PREFIX_SIZE : PREFIX_SIZE + length])
    header.update(change)
    raw = json.dumps(header).encode()
    prefix = MAGIC + struct.pack(">HI", version or struct.unpack(">H", data[8:10])[0], len(raw))
    body, seal = data[PREFIX_SIZE + length : -SEAL_SIZE], data[-SEAL_SIZE:]
    if version == 2:
        seal = seal[:40] + seal[-8:]  # length and payload digest, no object digest
    return prefix + raw + body + seal


class Live:
    """A metadata DB index in which every XCom of the run still has its row."""

    def __init__(self, uris: set[str]) -> None:
        self.uris = frozenset(uris)

    def live(self, dag_id: str, run_id: str) -> LiveXComs:
        return {("task", -1, key): self.uris for key in ("live", "gone_row")}


def test_a_rewritten_expiry_deletes_nothing(place: Place, raw: RawObjects) -> None:
    store = make_store([place.url], place.opener)
    stored = store.push({"v": list(range(100))}, origin(key="live"))
    raw.write(stored["uri"], with_header(raw.read(stored["uri"]), {"expires": PAST}))
    summary = collect(store, None, now=time.time() + LATER)
    assert summary.removed == {}
    assert raw.exists(stored["uri"]), "gc deleted a live object on a forged expiry"
    assert len(summary.unreadable) == 1, "the forgery is not reported"
    assert stored["uri"] in summary.unreadable[0]
    assert "modified" in summary.unreadable[0]


def test_an_older_objects_expiry_counts_only_with_the_db(place: Place, raw: RawObjects) -> None:
    store = make_store([place.url], place.opener)
    live = store.push({"v": 1}, origin(key="live"))
    gone = store.push({"v": 2}, origin(key="gone_row"))
    for stored in (live, gone):
        raw.write(stored["uri"], with_header(raw.read(stored["uri"]), {"expires": PAST}, version=2))
    alone = collect(store, None, now=time.time() + LATER)
    assert alone.removed == {}
    assert sorted(alone.unauthenticated_expiry) == sorted([live["uri"], gone["uri"]])
    with_db = collect(store, Live({live["uri"]}), now=time.time() + LATER)
    assert list(with_db.removed) == ["orphan"]
    assert with_db.removed["orphan"][0] == 1
    assert raw.exists(live["uri"]), "gc deleted an older object whose XCom still exists"
    assert not raw.exists(gone["uri"]), "an older object whose XCom is gone was kept"


def test_a_sealed_expiry_is_still_honoured(place: Place, raw: RawObjects) -> None:
    store = make_store([place.url], place.opener, retention="1h")
    stored = store.push({"v": 3}, origin(key="short"))
    summary = collect(store, None, now=time.time() + LATER)
    assert summary.removed["expired"][0] == 1
    assert not raw.exists(stored["uri"])
