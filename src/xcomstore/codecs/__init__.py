"""Codecs: value <-> payload bytes, one module per family of types, and their registry."""

from __future__ import annotations

from xcomstore.codecs.arrow import ArrowCodec
from xcomstore.codecs.base import Codec, Description
from xcomstore.codecs.json import JsonCodec
from xcomstore.codecs.numpy import NumpyCodec
from xcomstore.codecs.raw import BytesCodec
from xcomstore.codecs.registry import ENTRY_POINT_GROUP, CodecRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArrowCodec",
    "BytesCodec",
    "Codec",
    "CodecRegistry",
    "Description",
    "JsonCodec",
    "NumpyCodec",
]
