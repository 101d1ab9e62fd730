"""Everything else: the value as JSON, after a pluggable to-JSON step (Airflow's serde).

The core stays free of Airflow: by default values must already be JSON-like; the Airflow
backend passes serde's serialize/deserialize, so offloaded values round-trip exactly as
inline ones do (tuples stay tuples, datetimes stay datetimes, the allow-list applies).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from xcomstore.codecs.base import Codec, Description


def _identity(value: Any) -> Any:
    return value


class JsonCodec(Codec):
    name = "json"

    def __init__(
        self,
        to_jsonable: Callable[[Any], Any] = _identity,
        from_jsonable: Callable[[Any], Any] = _identity,
    ) -> None:
        self.to_jsonable = to_jsonable
        self.from_jsonable = from_jsonable

    def accepts(self, value: Any) -> bool:
        return True

    def dumps(self, value: Any) -> tuple[Any, bytes]:
        """The JSON-like form of `value` and its bytes: measured once, written as they are."""
        jsonable = self.to_jsonable(value)
        return jsonable, json.dumps(jsonable, ensure_ascii=False, separators=(",", ":")).encode()

    def describe(self, value: Any) -> Description:
        kind = type(value)
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        if isinstance(value, dict):
            return Description(name, f"{name} of {len(value)} key{'' if len(value) == 1 else 's'}")
        if isinstance(value, (list, tuple, set, frozenset)):
            return Description(name, f"{name} of {len(value)} items")
        if isinstance(value, str):
            return Description(name, f"str of {len(value)} characters")
        return Description(name, name)

    def encode(self, value: Any, sink: BinaryIO, compression: str) -> int | None:
        """`value` is the bytes from dumps()."""
        sink.write(value)
        return None

    def decode(self, source: BinaryIO, meta: Mapping[str, Any]) -> Any:
        return self.from_jsonable(json.loads(source.read()))
