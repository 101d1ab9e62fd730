"""Every value in two locations, a local folder and the S3 server: writes, fail-over, repair.

The S3 server is stopped for real in some tests (moto then loses its objects: a restarted
server comes back with empty buckets, like a store that lost data).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.lifecycle.stores import (
    RawObjects,
    flip_payload_byte,
    make_store,
    origin,
    run_cli,
    same,
    truncate,
    uris,
)
from tests.servers.s3 import S3Server

from xcomstore.airflow.environment import airflow_filesystem
from xcomstore.core import layout
from xcomstore.core.store import FilesystemOpener
from xcomstore.errors import StoreUnavailableError
from xcomstore.ops.repair import repair

pytestmark = pytest.mark.s3


def sample_values() -> dict[str, Any]:
    return {
        "frame": pd.DataFrame({"i": range(3000), "f": np.linspace(0, 1, 3000)}),
        "array": np.arange(6000, dtype="int32").reshape(60, 100),
        "doc": {"rows": [{"id": i, "name": f"n{i}"} for i in range(300)]},
    }


@pytest.fixture
def both(file_url: str, s3_url: str) -> list[str]:
    return [file_url, s3_url]


@pytest.mark.parametrize("opener_kind", ["fsspec", "airflow-connection"])
def test_each_value_written_to_both_locations(
    both: list[str], s3_fast: FilesystemOpener, raw: RawObjects, capsys: Any, opener_kind: str
) -> None:
    opener = s3_fast if opener_kind == "fsspec" else airflow_filesystem
    store = make_store(both, opener)
    for name, value in sample_values().items():
        where = origin(key=name)
        stored = store.push(value, where)
        relpath = layout.object_path(where)
        assert uris(stored) == [f"{both[0]}/{relpath}", f"{both[1]}/{relpath}"]
        local, remote = (raw.read(uri) for uri in uris(stored))
        assert local == remote, f"{name}: the two copies differ"
        for uri in uris(stored):
            assert store.verify(uri).origin == where
            assert same(store.read(uri), value)
        assert same(store.pull(stored), value)
    checked = run_cli(capsys, "--path", ", ".join(both), "verify", "--json")
    assert (checked.code, checked.json()["checked"], checked.json()["failed"]) == (0, 6, 0), checked.out


def test_push_with_s3_down_and_all_copies_required_leaves_nothing(
    both: list[str], s3_fast: FilesystemOpener, s3_outage: S3Server, raw: RawObjects
) -> None:
    store = make_store(both, s3_fast)
    where = origin()
    s3_outage.stop()
    with pytest.raises(StoreUnavailableError) as info:
        store.push(sample_values()["frame"], where)
    assert str(where) in str(info.value)
    assert both[1] in str(info.value), "the error does not name the location that failed"
    assert raw.files(both[0]) == [], "a local copy was left behind without a reference"
    s3_outage.start()
    assert raw.files(both[1]) == []


def test_push_with_s3_down_and_one_copy_required_then_repair(
    both: list[str], s3_fast: FilesystemOpener, s3_outage: S3Server, raw: RawObjects, capsys: Any
) -> None:
    store = make_store(both, s3_fast, required_copies="1")
    value = sample_values()["array"]
    s3_outage.stop()
    stored = store.push(value, origin())
    assert uris(stored) == [stored["uri"]]
    assert stored["uri"].startswith(both[0])
    assert same(store.pull(stored), value)
    s3_outage.start()
    repaired = run_cli(capsys, "--path", ", ".join(both), "repair", "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert [c["to"] for c in repaired.json()["copied"]] == [stored["uri"].replace(both[0], both[1])]
    assert run_cli(capsys, "--path", ", ".join(both), "verify", "--json").json()["failed"] == 0


def test_repair_restores_copies_lost_while_s3_was_down(
    both: list[str], s3_fast: FilesystemOpener, s3_outage: S3Server, raw: RawObjects, capsys: Any
) -> None:
    store = make_store(both, s3_fast)
    values = sample_values()
    refs = {name: store.push(value, origin(key=name)) for name, value in values.items()}
    s3_outage.stop()
    s3_outage.start()  # back, without its objects
    assert raw.files(both[1]) == []
    path = ", ".join(both)
    planned = run_cli(capsys, "--path", path, "repair", "--dry-run", "--json")
    assert len(planned.json()["copied"]) == 3
    assert raw.files(both[1]) == [], "a dry run copied something"
    repaired = run_cli(capsys, "--path", path, "repair", "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    assert sorted(c["to"] for c in repaired.json()["copied"]) == sorted(
        r["replicas"][0] for r in refs.values()
    )
    verified = run_cli(capsys, "--path", path, "verify", "--json")
    assert (verified.code, verified.json()["checked"], verified.json()["failed"]) == (0, 6, 0)
    for name, stored in refs.items():
        assert same(store.read(stored["replicas"][0]), values[name])


def test_pull_falls_over_when_the_primary_s3_is_down(
    file_url: str, s3_url: str, s3_fast: FilesystemOpener, s3_outage: S3Server
) -> None:
    store = make_store([s3_url, file_url], s3_fast)
    value = sample_values()["doc"]
    stored = store.push(value, origin())
    s3_outage.stop()
    began = time.monotonic()
    assert store.pull(stored) == value
    assert time.monotonic() - began < 20


DAMAGE: dict[str, Callable[[RawObjects, str], None]] = {
    "deleted": lambda raw, uri: raw.delete(uri),
    "flipped-byte": lambda raw, uri: raw.write(uri, flip_payload_byte(raw.read(uri))),
    "truncated": lambda raw, uri: raw.write(uri, truncate(raw.read(uri))),
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("primary", ["file", "s3"])
def test_pull_falls_over_to_the_other_copy(
    file_url: str, s3_url: str, s3_fast: FilesystemOpener, raw: RawObjects, primary: str, damage: str
) -> None:
    paths = [file_url, s3_url] if primary == "file" else [s3_url, file_url]
    store = make_store(paths, s3_fast)
    value = sample_values()["frame"]
    stored = store.push(value, origin())
    DAMAGE[damage](raw, stored["uri"])
    assert same(store.pull(stored), value)
    assert same(make_store(paths, s3_fast).pull(stored), value)  # a fresh client, no cached listing


def test_damaged_copies_repaired_then_verify_is_clean(
    both: list[str], s3_fast: FilesystemOpener, raw: RawObjects, capsys: Any
) -> None:
    store = make_store(both, s3_fast)
    values = sample_values()
    refs = {name: store.push(value, origin(key=name)) for name, value in values.items()}
    raw.write(refs["frame"]["replicas"][0], flip_payload_byte(raw.read(refs["frame"]["replicas"][0])))
    raw.write(refs["array"]["uri"], truncate(raw.read(refs["array"]["uri"])))  # the primary copy
    raw.delete(refs["doc"]["replicas"][0])
    path = ", ".join(both)
    before = run_cli(capsys, "--path", path, "verify", "--json")
    assert (before.code, before.json()["failed"]) == (1, 2), before.out
    planned = repair(store, dry_run=True)
    assert len(planned.copied) == 3
    assert not planned.unrecoverable
    assert not raw.exists(refs["doc"]["replicas"][0]), "a dry run copied something"
    repaired = run_cli(capsys, "--path", path, "repair", "--json")
    assert repaired.code == 0, repaired.out + repaired.err
    copied = {c["to"]: c["from"] for c in repaired.json()["copied"]}
    assert copied == {
        refs["frame"]["replicas"][0]: refs["frame"]["uri"],
        refs["array"]["uri"]: refs["array"]["replicas"][0],
        refs["doc"]["replicas"][0]: refs["doc"]["uri"],
    }
    after = run_cli(capsys, "--path", path, "verify", "--json")
    assert (after.code, after.json()["checked"], after.json()["failed"]) == (0, 6, 0), after.out
    for name, stored in refs.items():
        assert raw.read(stored["uri"]) == raw.read(stored["replicas"][0])
        assert same(store.pull(stored), values[name])
    assert repair(make_store(both, s3_fast)).copied == [], "a second repair still found something to copy"


KEY = base64.b64encode(bytes(range(32))).decode()


def test_repair_restores_an_encrypted_copy(
    both: list[str], s3_fast: FilesystemOpener, raw: RawObjects
) -> None:
    store = make_store(both, s3_fast, encryption_keys=f"k1:{KEY}")
    stored = store.push({"secret": list(range(100))}, origin())
    raw.delete(stored["replicas"][0])
    summary = repair(store)
    assert summary.unrecoverable == []
    assert [c["to"] for c in summary.copied] == [stored["replicas"][0]]
    assert store.read(stored["replicas"][0]) == {"secret": list(range(100))}
