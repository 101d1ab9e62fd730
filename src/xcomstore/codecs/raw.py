"""`bytes` and `bytearray`, stored as they are."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO

from xcomstore.codecs.base import Codec, Description
from xcomstore.format.compression import sample_of

_CHUNK = 8 << 20


class BytesCodec(Codec):
    name = "bytes"

    def accepts(self, value: Any) -> bool:
        return type(value) in (bytes, bytearray)

    def describe(self, value: Any) -> Description:
        name = type(value).__name__
        return Description(name, f"{name} of {len(value)} B", {"class": name})

    def size_hint(self, value: Any) -> int:
        return len(value)

    def sample(self, value: Any) -> bytes | memoryview:
        return sample_of(value)  # the value is the payload

    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        view = memoryview(value)
        for start in range(0, len(view), _CHUNK):
            sink.write(view[start : start + _CHUNK])
        return None

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        data = source.read()  # trust boundary: bounded by the budget of the source (BoundedReader)
        return bytearray(data) if meta.get("class") == "bytearray" else bytes(data)
