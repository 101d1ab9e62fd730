"""XComStoreContract: what an XComStore must do on every kind of store: push and pull a value of
each codec, read by URI, purge, verify, list, and fail over to the next copy.

Not collected itself. To run it on a store kind, subclass XComStoreContract in a test module
and provide `urls` (two empty locations, primary first) and, unless plain fsspec reaches them,
`opener`: tests/unit/test_xcomstore_file.py (local folders), tests/lifecycle/test_xcomstore_s3.py
(the S3 server). Every value is offloaded (threshold 0); the stores come from
tests/lifecycle/stores.make_store, and `raw` (tests/lifecycle/stores.RawObjects) reaches the
bytes behind a URI without xcomstore.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from tests.lifecycle.stores import RawObjects, flip_payload_byte, make_store, same, truncate, uris

from xcomstore.core import layout
from xcomstore.core.reference import is_reference
from xcomstore.core.store import FilesystemOpener, XComStore
from xcomstore.errors import CorruptObjectError, ObjectNotFoundError, XComStoreError
from xcomstore.identity import Origin, Wanted
from xcomstore.storage.location import fsspec_filesystem

RUN = "manual__2026-01-02T03:04:05+00:00"


def where(
    key: str = "return_value", *, dag_id: str = "contract", run_id: str = RUN, task_id: str = "task"
) -> Origin:
    return Origin(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1, key=key)


def wanted(origin: Origin) -> Wanted:
    """The XCom `origin` as a reader asks for it."""
    return origin.wanted()


#: One value per codec: its maker, and the codec the object's header must name.
VALUES: dict[str, tuple[Callable[[], Any], str]] = {
    "pandas": (
        lambda: pd.DataFrame({"i": range(500), "f": np.linspace(0, 1, 500), "s": ["x"] * 500}),
        "arrow",
    ),
    "polars": (lambda: pl.DataFrame({"i": range(500), "s": [f"v{i}" for i in range(500)]}), "arrow"),
    "arrow": (
        lambda: pa.table({"i": pa.array(range(500), pa.int64()), "b": [i % 2 == 0 for i in range(500)]}),
        "arrow",
    ),
    "numpy": (lambda: np.arange(6000, dtype="int32").reshape(60, 100), "numpy"),
    "bytes": (lambda: bytes(range(256)) * 40, "bytes"),
    "json": (lambda: {"rows": [{"id": i, "name": f"n{i}"} for i in range(200)], "done": True}, "json"),
}
#: Ways to spoil the primary copy; the pull must then come from the second.
SPOILERS: dict[str, Callable[[RawObjects, str], None]] = {
    "removed": lambda raw, uri: raw.delete(uri),
    "flipped-byte": lambda raw, uri: raw.write(uri, flip_payload_byte(raw.read(uri))),
    "truncated": lambda raw, uri: raw.write(uri, truncate(raw.read(uri))),
}


class XComStoreContract:
    """The behaviour of XComStore on every store kind. Subclasses provide `urls` (and `opener`)."""

    @pytest.fixture
    def urls(self) -> tuple[str, str]:
        raise NotImplementedError("an XComStoreContract subclass provides two empty locations")

    @pytest.fixture
    def opener(self) -> FilesystemOpener:
        return fsspec_filesystem

    @pytest.fixture
    def store(self, urls: tuple[str, str], opener: FilesystemOpener) -> XComStore:
        """Everything offloaded to the first location."""
        return make_store([urls[0]], opener)

    @pytest.fixture
    def replicated(self, urls: tuple[str, str], opener: FilesystemOpener) -> XComStore:
        """Everything offloaded to both locations, the first read first."""
        return make_store(list(urls), opener)

    # -- push and pull ---------------------------------------------------------------------
    @pytest.mark.parametrize("kind", list(VALUES))
    def test_push_pull_each_codec(
        self, store: XComStore, urls: tuple[str, str], raw: RawObjects, kind: str
    ) -> None:
        make, codec = VALUES[kind]
        value, origin = make(), where(kind)
        stored = store.push(value, origin)
        assert is_reference(stored), stored
        assert uris(stored) == [f"{urls[0]}/{layout.object_path(origin)}"]
        assert raw.exists(stored["uri"])
        assert same(store.pull(stored), value)
        assert same(store.pull(stored, wanted(origin)), value)
        assert same(store.read(stored["uri"]), value)
        header = store.verify(stored["uri"])
        assert (header.codec, header.origin) == (codec, origin)

    def test_pull_is_refused_for_another_xcom(self, store: XComStore) -> None:
        stored = store.push(b"mine", where("mine"))
        with pytest.raises(XComStoreError, match="belongs to another XCom"):
            store.pull(stored, wanted(where("other")))

    # -- purge -----------------------------------------------------------------------------
    def test_purge(self, store: XComStore, raw: RawObjects) -> None:
        origin = where()
        stored = store.push(VALUES["numpy"][0](), origin)
        kept = store.push(b"kept", where("kept"))
        assert store.purge(stored, wanted(origin)) is True
        assert not raw.exists(stored["uri"])
        with pytest.raises(ObjectNotFoundError):
            store.pull(stored)
        assert store.purge(stored) is False  # nothing left to delete
        assert store.pull(kept) == b"kept"
        assert store.purge({"not": "a reference"}) is False

    def test_purge_removes_every_copy(self, replicated: XComStore, raw: RawObjects) -> None:
        stored = replicated.push(b"twice", where())
        assert len(uris(stored)) == 2
        assert replicated.purge(stored) is True
        assert [raw.exists(uri) for uri in uris(stored)] == [False, False]

    # -- verify ----------------------------------------------------------------------------
    def test_verify(self, store: XComStore, raw: RawObjects) -> None:
        origin = where()
        stored = store.push(VALUES["pandas"][0](), origin)
        assert store.verify(stored["uri"]).origin == origin
        raw.write(stored["uri"], flip_payload_byte(raw.read(stored["uri"])))
        with pytest.raises(CorruptObjectError, match="checksum"):
            store.verify(stored["uri"])

    def test_verify_missing_object(self, store: XComStore) -> None:
        stored = store.push(b"gone soon", where())
        store.purge(stored)
        with pytest.raises(ObjectNotFoundError):
            store.verify(stored["uri"])

    # -- list ------------------------------------------------------------------------------
    def test_list(self, store: XComStore) -> None:
        origins = [
            where("a"),
            where("b", task_id="other"),
            where("a", run_id="manual__2026-02-03T00:00:00+00:00"),
            where("a", dag_id="elsewhere"),
        ]
        stored = {origin: store.push(f"value of {origin}".encode(), origin) for origin in origins}
        found = list(store.list())
        assert sorted(o.uri for o in found) == sorted(s["uri"] for s in stored.values())
        for obj in found:
            assert obj.header is not None, obj.error
            assert obj.header.codec == "bytes"
            assert obj.size == stored[obj.header.origin]["stored_bytes"]
        assert {o.header.origin for o in store.list("contract") if o.header} == set(origins[:3])
        assert {o.header.origin for o in store.list("contract", RUN) if o.header} == set(origins[:2])
        assert list(store.list("nobody")) == []

    # -- copies and fail-over --------------------------------------------------------------
    def test_every_copy_is_written(
        self, replicated: XComStore, urls: tuple[str, str], raw: RawObjects
    ) -> None:
        origin = where()
        stored = replicated.push(VALUES["arrow"][0](), origin)
        relpath = layout.object_path(origin)
        assert uris(stored) == [f"{urls[0]}/{relpath}", f"{urls[1]}/{relpath}"]
        first, second = (raw.read(uri) for uri in uris(stored))
        assert first == second
        for uri in uris(stored):
            assert replicated.verify(uri).origin == origin

    @pytest.mark.parametrize("spoil", list(SPOILERS))
    def test_pull_fails_over_to_the_second_copy(
        self, replicated: XComStore, raw: RawObjects, spoil: str
    ) -> None:
        value = VALUES["pandas"][0]()
        stored = replicated.push(value, where())
        SPOILERS[spoil](raw, stored["uri"])
        with pytest.raises(XComStoreError):  # the first copy alone no longer reads
            replicated.read(stored["uri"])
        assert same(replicated.pull(stored), value)
        assert same(replicated.read(stored["replicas"][0]), value)

    def test_pull_fails_when_every_copy_is_spoiled(self, replicated: XComStore, raw: RawObjects) -> None:
        stored = replicated.push(VALUES["numpy"][0](), where())
        first, second = uris(stored)
        raw.delete(first)
        raw.write(second, flip_payload_byte(raw.read(second)))
        with pytest.raises(XComStoreError, match="no copy could be read") as info:
            replicated.pull(stored)
        assert first in str(info.value)
        assert second in str(info.value)
