"""Client-side encryption on real stores: round trip, a wrong or missing key is a clear error,
rotation (new key first), and `xcomstore rekey` so that an old key can be removed."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.lifecycle.stores import Place, RawObjects, make_store, origin, run_cli, same

from xcomstore.core.store import XComStore
from xcomstore.errors import CorruptObjectError, MissingKeyError

OLD, NEW = "k2025", "k2026"
OLD_KEY = base64.b64encode(bytes(range(32))).decode()
NEW_KEY = base64.b64encode(bytes(range(100, 132))).decode()
SECRET = b"attack at dawn, "


def keys(*pairs: tuple[str, str]) -> str:
    return ", ".join(f"{key_id}:{key}" for key_id, key in pairs)


def encrypted(place: Place, *pairs: tuple[str, str]) -> XComStore:
    return make_store([place.url], place.opener, compression="none", encryption_keys=keys(*pairs))


def test_round_trip_and_nothing_readable_at_rest(place: Place, raw: RawObjects) -> None:
    store = encrypted(place, (NEW, NEW_KEY))
    values: dict[str, Any] = {
        "frame": pd.DataFrame({"word": ["dawn"] * 500, "n": range(500)}),
        "array": np.arange(1000.0),
        "secret": SECRET * 100,
    }
    refs = {key: store.push(value, origin(key=key)) for key, value in values.items()}
    for key, stored in refs.items():
        assert store.verify(stored["uri"]).encryption["key_id"] == NEW
        assert same(store.pull(stored), values[key]), key
    assert SECRET not in raw.read(refs["secret"]["uri"])
    assert b"dawn" not in raw.read(refs["frame"]["uri"])


def test_missing_or_wrong_key_is_a_clear_error(place: Place) -> None:
    where = origin(key="sealed")
    stored = encrypted(place, (OLD, OLD_KEY)).push({"v": list(range(100))}, where)
    readers = {
        "no keys at all": (make_store([place.url], place.opener), MissingKeyError, f"'{OLD}'"),
        "another key id": (encrypted(place, (NEW, NEW_KEY)), MissingKeyError, f"'{OLD}'"),
        "the id with a wrong key": (encrypted(place, (OLD, NEW_KEY)), CorruptObjectError, "authentication"),
    }
    for case, (reader, error, says) in readers.items():
        with pytest.raises(error, match=says) as info:
            reader.pull(stored)
        assert str(where) in str(info.value), case
        assert stored["uri"] in str(info.value), case


def test_rotation_then_rekey_lets_the_old_key_go(
    place: Place, raw: RawObjects, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = make_store([place.url], place.opener).push({"era": "before encryption"}, origin(key="plain"))
    old = encrypted(place, (OLD, OLD_KEY)).push({"era": "old key"}, origin(key="old"))
    rotated = encrypted(place, (NEW, NEW_KEY), (OLD, OLD_KEY))
    assert rotated.pull(old) == {"era": "old key"}, "an old object is unreadable after the rotation"
    new = rotated.push({"era": "new key"}, origin(key="new"))
    assert rotated.head(new["uri"]).encryption["key_id"] == NEW

    monkeypatch.setenv("AIRFLOW__XCOMSTORE__ENCRYPTION_KEYS", keys((NEW, NEW_KEY), (OLD, OLD_KEY)))
    before = {uri: raw.read(uri) for uri in raw.files(place.url)}
    planned = run_cli(capsys, "--path", place.url, "rekey", "--dry-run", "--json").json()
    assert sorted(planned["rewritten"]) == sorted([plain["uri"], old["uri"]])
    assert {uri: raw.read(uri) for uri in raw.files(place.url)} == before, "a dry run rewrote something"
    done = run_cli(capsys, "--path", place.url, "rekey", "--json")
    assert done.code == 0, done.out + done.err
    assert done.json()["errors"] == []
    assert sorted(done.json()["rewritten"]) == sorted([plain["uri"], old["uri"]])
    assert raw.read(new["uri"]) == before[new["uri"]], "rekey rewrote an object already under the new key"

    only_new = encrypted(place, (NEW, NEW_KEY))
    for stored, era in ((plain, "before encryption"), (old, "old key"), (new, "new key")):
        assert only_new.pull(stored) == {"era": era}, "an old reference no longer reads after rekey"
        assert only_new.head(stored["uri"]).encryption["key_id"] == NEW
    with pytest.raises(MissingKeyError, match=f"'{NEW}'"):
        encrypted(place, (OLD, OLD_KEY)).pull(old)
    again = run_cli(capsys, "--path", place.url, "rekey", "--json").json()
    assert (again["checked"], again["rewritten"]) == (3, [])
