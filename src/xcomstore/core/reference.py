"""The reference: the small JSON dict kept in the metadata DB in place of an offloaded value.

It is what the Airflow UI and REST API show for the XCom, so it leads with a readable summary.
The tag key makes it unmistakable: a user's own dict or string is never taken for a reference,
and a dict that carries the tag but is malformed is refused rather than returned as data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from xcomstore.errors import ForgedReferenceError
from xcomstore.format import checksum

TAG: Final = "__xcomstore__"
VERSION: Final = 1
_MAX_URI: Final = 4096
_ROUTE_RE: Final = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class Reference:
    uri: str
    type_name: str
    summary: str
    codec: str
    compression: str
    size: int  # payload bytes before compression
    stored_bytes: int  # bytes of the whole stored object
    checksum: str  # of the stored payload, with its algorithm: "blake3:<hex>"
    replicas: tuple[str, ...] = ()  # further copies, in other locations, tried in order
    expires: str | None = None  # ISO time after which `xcomstore gc` may delete it
    # The fingerprint of the route that placed it (core/routes.py); None: written before routes.
    route: str | None = None

    @property
    def uris(self) -> tuple[str, ...]:
        return (self.uri, *self.replicas)

    def to_json(self) -> dict[str, Any]:
        return {
            TAG: VERSION,
            "summary": self.summary,
            "type": self.type_name,
            "size": self.size,
            "stored_bytes": self.stored_bytes,
            "compression": self.compression,
            "codec": self.codec,
            "uri": self.uri,
            "checksum": self.checksum,
            **({"replicas": list(self.replicas)} if self.replicas else {}),
            **({"expires": self.expires} if self.expires else {}),
            **({"route": self.route} if self.route else {}),
        }

    @classmethod
    def from_json(cls, data: Any) -> Reference:
        """Parse a stored reference strictly; anything off raises ForgedReferenceError."""
        if not is_reference(data):
            raise ForgedReferenceError("not an xcomstore reference")
        if type(data[TAG]) is not int or data[TAG] != VERSION:
            raise ForgedReferenceError(f"reference version {data[TAG]!r} is not one this xcomstore reads")
        texts = {k: data.get(k) for k in ("uri", "type", "summary", "codec", "compression")}
        numbers = {k: data.get(k) for k in ("size", "stored_bytes")}
        bad = [k for k, v in texts.items() if not isinstance(v, str)]
        bad += [k for k, v in numbers.items() if type(v) is not int or v < 0]
        if bad:
            raise ForgedReferenceError(f"reference field(s) {', '.join(bad)} missing or of the wrong type")
        digest = _checksum(data)
        if not checksum.is_label(digest) or len(texts["uri"] or "") > _MAX_URI:
            raise ForgedReferenceError("reference has a malformed checksum or an overlong uri")
        replicas = data.get("replicas", [])
        if not isinstance(replicas, list) or not all(
            isinstance(r, str) and len(r) <= _MAX_URI for r in replicas
        ):
            raise ForgedReferenceError("reference field replicas is not a list of uris")
        expires = data.get("expires")
        if expires is not None and not isinstance(expires, str):
            raise ForgedReferenceError("reference field expires is not a string")
        route = data.get("route")
        if route is not None and not (isinstance(route, str) and _ROUTE_RE.fullmatch(route)):
            raise ForgedReferenceError("reference field route is not a route fingerprint")
        return cls(
            uri=str(texts["uri"]),
            type_name=str(texts["type"]),
            summary=str(texts["summary"]),
            codec=str(texts["codec"]),
            compression=str(texts["compression"]),
            size=int(numbers["size"]),
            stored_bytes=int(numbers["stored_bytes"]),
            checksum=str(digest),
            replicas=tuple(replicas),
            expires=expires,
            route=route,
        )


def _checksum(data: Mapping[str, Any]) -> Any:
    """The labelled checksum; references written before BLAKE3 hold a bare "sha256" instead."""
    if "checksum" in data:
        return data["checksum"]
    legacy = data.get("sha256")
    return f"{checksum.SHA256}:{legacy}" if isinstance(legacy, str) else None


def is_reference(data: Any) -> bool:
    """Whether `data` claims to be a reference (it may still be malformed)."""
    return isinstance(data, Mapping) and TAG in data
