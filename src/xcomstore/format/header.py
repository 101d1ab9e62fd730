"""An object's header: what it says about itself, parsed strictly from untrusted bytes.

The header is the JSON document after the object's prefix (see container.py). Every field is
type-checked and every name (compression, checksum) must be one this installation knows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xcomstore.errors import ObjectFormatError
from xcomstore.format import checksum, compression
from xcomstore.identity import Origin


@dataclass(frozen=True)
class Header:
    """What an object says about itself. `meta` is the codec's own description of the payload."""

    codec: str
    compression: str
    type_name: str
    summary: str
    origin: Origin
    created: str
    expires: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    producer: Mapping[str, str] = field(default_factory=dict)
    encryption: Mapping[str, str] | None = None  # algorithm, key id and nonce when encrypted
    checksum: str = checksum.DEFAULT  # the seal's digest algorithm
    # How the payload is laid out: "stream" (one encoded stream) or "blocks" (a table as blocks
    # an index addresses, format/blocks.py). Written only when not "stream": older headers
    # stay byte for byte what they were.
    layout: str = "stream"

    def to_bytes(self) -> bytes:
        doc = {
            "codec": self.codec,
            "compression": self.compression,
            "type": self.type_name,
            "summary": self.summary,
            "origin": self.origin.to_json(),
            "created": self.created,
            "expires": self.expires,
            "meta": dict(self.meta),
            "producer": dict(self.producer),
            **({"encryption": dict(self.encryption)} if self.encryption else {}),
            "checksum": self.checksum,
            **({"layout": self.layout} if self.layout != "stream" else {}),
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd nesting or numbers
            raise ObjectFormatError(f"header is not valid JSON: {type(exc).__name__}: {exc}") from None
        if not isinstance(doc, dict):
            raise ObjectFormatError("header is not a JSON object")
        return cls(
            codec=_text(doc, "codec"),
            compression=_known_compression(_text(doc, "compression")),
            type_name=_text(doc, "type"),
            summary=_text(doc, "summary"),
            origin=Origin.from_json(doc.get("origin")),
            created=_text(doc, "created"),
            expires=_optional_text(doc, "expires"),
            meta=_mapping(doc, "meta"),
            producer=_mapping(doc, "producer"),
            encryption=_mapping(doc, "encryption") or None,
            checksum=_known_checksum(doc.get("checksum", checksum.SHA256)),  # absent: version 1
            layout=_known_layout(doc.get("layout", "stream")),
        )


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise ObjectFormatError(f"header field {name!r} is missing or not a string")
    return value


def _optional_text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise ObjectFormatError(f"header field {name!r} is not a string")
    return value


def _mapping(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ObjectFormatError(f"header field {name!r} is not an object")
    return value


def _known_checksum(name: object) -> str:
    if name not in checksum.NAMES:
        raise ObjectFormatError(f"header names an unknown checksum {name!r}")
    return str(name)


LAYOUTS = ("stream", "blocks")


def _known_layout(name: object) -> str:
    if name not in LAYOUTS:
        raise ObjectFormatError(f"header names an unknown payload layout {name!r}")
    return str(name)


def _known_compression(name: str) -> str:
    if name not in compression.NAMES:
        raise ObjectFormatError(f"header names an unknown compression {name!r}")
    return name
