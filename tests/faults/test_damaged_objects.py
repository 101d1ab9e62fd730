"""Damaged objects on real stores: deleted, truncated, a flipped byte, a header from a newer
format version. Each read ends in an error naming the XCom (dag/run/task/key) and the URI, and
nothing else stored is harmed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from tests.lifecycle.stores import (
    Place,
    RawObjects,
    flip_payload_byte,
    future_version,
    make_store,
    origin,
    truncate,
)

from xcomstore.errors import CorruptObjectError, ObjectFormatError, ObjectNotFoundError, XComStoreError

DAMAGE: dict[str, tuple[Callable[[RawObjects, str], None], type[XComStoreError], str]] = {
    "deleted": (lambda raw, uri: raw.delete(uri), ObjectNotFoundError, "no object"),
    "truncated": (lambda raw, uri: raw.write(uri, truncate(raw.read(uri))), ObjectFormatError, "truncated"),
    "flipped-byte": (
        lambda raw, uri: raw.write(uri, flip_payload_byte(raw.read(uri))),
        CorruptObjectError,
        "checksum",
    ),
    "future-format": (
        lambda raw, uri: raw.write(uri, future_version(raw.read(uri))),
        ObjectFormatError,
        "newer than this xcomstore reads",
    ),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_object_is_a_clear_error_and_harms_nothing_else(
    place: Place, raw: RawObjects, damage: str
) -> None:
    store = make_store([place.url], place.opener)
    victim = origin(task="produce", key="frame")
    stored = store.push(np.arange(5000.0), victim)
    bystander = store.push({"fine": True}, origin(task="produce", key="other"))
    untouched = raw.read(bystander["uri"])
    harm, error, says = DAMAGE[damage]
    harm(raw, stored["uri"])
    fresh = make_store([place.url], place.opener)  # no client-side cache of the old object
    for read in (fresh.pull, lambda ref: fresh.verify(ref["uri"])):
        with pytest.raises(error, match=says) as info:
            read(stored)
        assert str(victim) in str(info.value), f"the XCom is not named: {info.value}"
        assert stored["uri"] in str(info.value), f"the URI is not named: {info.value}"
    assert raw.read(bystander["uri"]) == untouched
    assert fresh.pull(bystander) == {"fine": True}
