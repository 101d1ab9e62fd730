"""Retention: TTL and rules write the expiry into each object's header; `gc --expired-only`
removes expired objects, and only those, with no metadata DB at all."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from tests.lifecycle.stores import Place, RawObjects, future_version, make_store, origin, run_cli

from xcomstore.core.store import XComStore
from xcomstore.identity import Origin
from xcomstore.ops.gc import collect

HOUR, DAY = 3600.0, 86400.0
RULES = "key=scratch_*:1d; dag_id=keep_*:never"
ORIGINS = {
    "default": origin(key="report"),  # retention (1h)
    "scratch": origin(key="scratch_rows"),  # key=scratch_*: 1d
    "kept": origin(dag="keep_forever"),  # dag_id=keep_*: never
}


def push_all(store: XComStore, origins: dict[str, Origin]) -> dict[str, dict[str, Any]]:
    return {name: store.push({"name": name, "pad": "x" * 2000}, where) for name, where in origins.items()}


def sizes(raw: RawObjects, url: str) -> dict[str, int]:
    return {uri: len(raw.read(uri)) for uri in raw.files(url)}


def test_ttl_and_rules_write_expiry_into_headers(place: Place, capsys: Any) -> None:
    store = make_store([place.url], place.opener, retention="1h", retention_rules=RULES)
    refs = push_all(store, ORIGINS)
    for name, ttl in (("default", HOUR), ("scratch", DAY)):
        header = store.head(refs[name]["uri"])
        assert header.expires is not None
        assert refs[name]["expires"] == header.expires
        lifetime = datetime.fromisoformat(header.expires) - datetime.fromisoformat(header.created)
        assert lifetime.total_seconds() == ttl, name
    assert store.head(refs["kept"]["uri"]).expires is None
    assert "expires" not in refs["kept"]
    listed = run_cli(capsys, "--path", place.url, "ls", "--json").json()
    assert {o["uri"]: o["expires"] for o in listed} == {r["uri"]: r.get("expires") for r in refs.values()}


def test_gc_expired_only_with_a_shifted_clock(place: Place, raw: RawObjects) -> None:
    store = make_store([place.url], place.opener, retention="1h", retention_rules=RULES)
    refs = push_all(store, ORIGINS)
    size = sizes(raw, place.url)
    now = time.time()
    assert collect(store, None, now=now).removed == {}
    planned = collect(store, None, now=now + 2 * HOUR, dry_run=True)
    assert planned.removed == {"expired": [1, size[refs["default"]["uri"]]]}
    assert sorted(raw.files(place.url)) == sorted(size), "a dry run deleted something"
    first = collect(store, None, now=now + 2 * HOUR)
    assert (first.scanned, first.removed) == (3, {"expired": [1, size[refs["default"]["uri"]]]})
    assert raw.files(place.url) == sorted([refs["scratch"]["uri"], refs["kept"]["uri"]])
    later = collect(store, None, now=now + 2 * DAY)
    assert later.removed == {"expired": [1, size[refs["scratch"]["uri"]]]}
    assert collect(store, None, now=now + 3650 * DAY).removed == {}
    assert raw.files(place.url) == [refs["kept"]["uri"]]
    assert store.pull(refs["kept"])["name"] == "kept"


def test_gc_cli_expired_only_json_summary(file_url: str, raw: RawObjects, capsys: Any) -> None:
    store = make_store([file_url], retention="1h", retention_rules="key=short_*:1s")
    refs = push_all(store, {**ORIGINS, "short": origin(key="short_a"), "short2": origin(key="short_b")})
    expired = {refs["short"]["uri"], refs["short2"]["uri"]}
    size = sizes(raw, file_url)
    time.sleep(1.2)  # the two short_* objects expire
    young = run_cli(capsys, "--path", file_url, "gc", "--expired-only", "--json").json()
    assert (young["removed"], young["spared_young"]) == ({}, 5), "the default 1h grace spares new objects"
    args = ["--path", file_url, "gc", "--expired-only", "--grace", "0s", "--json"]
    planned = run_cli(capsys, *args[:-1], "--dry-run", "--json")
    expected = {"expired": {"objects": 2, "bytes": sum(size[uri] for uri in expired)}}
    assert (planned.code, planned.json()["dry_run"], planned.json()["removed"]) == (0, True, expected)
    assert len(raw.files(file_url)) == 5
    done = run_cli(capsys, *args)
    assert (done.code, done.json()["dry_run"], done.json()["removed"], done.json()["errors"]) == (
        0,
        False,
        expected,
        [],
    )
    assert set(raw.files(file_url)) == set(size) - expired
    again = run_cli(capsys, "--path", file_url, "gc", "--expired-only", "--grace", "0s")
    assert again.code == 0
    assert "removed" not in again.out
    assert "3 objects scanned" in again.out


def test_gc_expired_only_removes_nothing_but_expired_objects(file_url: str, raw: RawObjects) -> None:
    store = make_store([file_url], retention_rules="key=short_*:1s")
    expired = store.push({"v": 1}, origin(key="short_lived"))
    newer = store.push({"v": 2}, origin(key="from_a_newer_xcomstore"))
    raw.write(newer["uri"], future_version(raw.read(newer["uri"])))
    expired_size = len(raw.read(expired["uri"]))
    summary = collect(store, None, grace=0, now=time.time() + 60)
    assert raw.exists(newer["uri"]), "gc --expired-only deleted an object that had not expired"
    assert summary.removed == {"expired": [1, expired_size]}
    assert not raw.exists(expired["uri"])
