"""The codec registry: which codec stores a value, and which one reads an object back."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from xcomstore.codecs.arrow import ArrowCodec
from xcomstore.codecs.base import Codec
from xcomstore.codecs.json import JsonCodec
from xcomstore.codecs.numpy import NumpyCodec
from xcomstore.codecs.raw import BytesCodec
from xcomstore.errors import ObjectFormatError


class CodecRegistry:
    """Binary codecs, tried in order, and the JSON codec that takes every other value."""

    def __init__(self, json_codec: JsonCodec, binary: Iterable[Codec] | None = None) -> None:
        self.json = json_codec
        self.binary = tuple(binary) if binary is not None else (ArrowCodec(), NumpyCodec(), BytesCodec())
        self._by_name = {c.name: c for c in (*self.binary, json_codec)}

    def binary_for(self, value: Any) -> Codec | None:
        """The binary codec made for this value's type, or None if it is a JSON value."""
        return next((c for c in self.binary if c.accepts(value)), None)

    def by_name(self, name: str) -> Codec:
        try:
            return self._by_name[name]
        except KeyError:
            raise ObjectFormatError(
                f"object was written with codec {name!r}, which this installation does not have"
            ) from None
