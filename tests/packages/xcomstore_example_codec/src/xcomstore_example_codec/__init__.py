"""Codecs of a user package, as the tests install it: how a type of one's own gets stored.

PointCodec is declared in the `xcomstore.codecs` entry point group (see pyproject.toml), so
it is on wherever the package is installed; FractionCodec is only used when the
`[xcomstore] codecs` setting names it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

from xcomstore.codecs import Codec, Description
from xcomstore.errors import ObjectFormatError

_XY = struct.Struct("<dd")


@dataclass(frozen=True)
class Point:
    x: float
    y: float


class PointCodec(Codec):
    """A Point as its two coordinates, 16 bytes."""

    name = "point"

    def accepts(self, value: Any) -> bool:
        return type(value) is Point

    def describe(self, value: Any) -> Description:
        return Description("xcomstore_example_codec.Point", f"Point({value.x}, {value.y})")

    def size_hint(self, value: Any) -> int:
        return _XY.size

    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        sink.write(_XY.pack(value.x, value.y))
        return None

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        data = source.read()
        if len(data) != _XY.size:
            raise ObjectFormatError(f"a point is {_XY.size} bytes, not {len(data)}")
        return Point(*_XY.unpack(data))


class FractionCodec(Codec):
    """A fractions.Fraction as its text, e.g. "22/7": exact, unlike a float."""

    name = "fraction"

    def accepts(self, value: Any) -> bool:
        return type(value) is Fraction

    def describe(self, value: Any) -> Description:
        return Description("fractions.Fraction", f"Fraction {value}")

    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        sink.write(str(value).encode("ascii"))
        return None

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        # Fraction() parses only numbers: nothing in the payload can run code.
        return Fraction(source.read().decode("ascii"))
