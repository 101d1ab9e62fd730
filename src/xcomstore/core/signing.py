"""Signed references: an HMAC binds a reference to the object it names.

Anyone with XCom edit rights can write any JSON into an XCom row. With signing keys set, a
reference xcomstore did not write (another file, bucket or tenant) has no valid signature and
is refused by reads and by purge. The signature covers every field that says which object,
in which state, is meant: URIs, checksum, sizes, codec, compression, type and expiry, and
the route that placed it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any, Final

from xcomstore.errors import ForgedReferenceError

FIELD: Final = "sig"
_SIGNED: Final = (
    "uri",
    "replicas",
    "sha256",  # the checksum of references written before "checksum"
    "size",
    "stored_bytes",
    "codec",
    "compression",
    "type",
    "expires",
)
# "route": the fingerprint of the route that placed it (core/routes.py); signed, it cannot be
# changed nor dropped to lead a read into another route's location.
_SIGNED_WHEN_PRESENT: Final = ("checksum", "route")


def sign(doc: dict[str, Any], keys: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """`doc` with a signature by the first key (unchanged when no keys are set)."""
    if not keys:
        return doc
    key_id, secret = keys[0]
    return {**doc, FIELD: f"{key_id}:{_mac(doc, secret)}"}


def check(doc: dict[str, Any], keys: Sequence[tuple[str, bytes]]) -> None:
    """Raise ForgedReferenceError unless `doc` carries a valid signature by a configured key."""
    if not keys:
        return
    signature = doc.get(FIELD)
    if not isinstance(signature, str) or ":" not in signature:
        raise ForgedReferenceError("the reference is not signed, and [xcomstore] signing_keys requires it")
    key_id, _, mac = signature.partition(":")
    secret = dict(keys).get(key_id)
    if secret is None:
        raise ForgedReferenceError(f"the reference is signed with key {key_id!r}, which is not configured")
    if not hmac.compare_digest(mac.encode("utf-8", "replace"), _mac(doc, secret).encode()):
        raise ForgedReferenceError("the reference's signature does not match: it was altered or forged")


def _mac(doc: dict[str, Any], secret: bytes) -> str:
    signed = {name: doc.get(name) for name in _SIGNED}
    # Added after the first signed references: covered only when present, so those still check.
    signed.update({name: doc[name] for name in _SIGNED_WHEN_PRESENT if name in doc})
    message = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
