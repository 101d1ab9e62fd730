"""Everything else: the value as JSON, after a pluggable to-JSON step (Airflow's serde).

Values made only of dicts, lists and JSON scalars skip that step (see is_plain_json).
The core stays free of Airflow: by default values must already be JSON-like; the Airflow
backend passes serde's serialize/deserialize, so offloaded values round-trip exactly as
inline ones do (tuples stay tuples, datetimes stay datetimes, the allow-list applies).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from xcomstore.codecs.base import Codec, Description

_SCALARS = frozenset({str, int, float, bool, type(None)})


def _identity(value: Any) -> Any:
    return value


def is_plain_json(value: Any) -> bool:
    """Whether `value` is only dicts with str keys, lists and JSON scalars, all of exactly those
    types: then serde would return an equal copy of it in either direction, and is skipped
    (it walks every item in Python: 8× slower than this check on 10 MB of records). Keys
    starting with "__" are serde's markers, so dicts holding them still go through serde."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if any(type(key) is not str or key.startswith("__") for key in item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind not in _SCALARS:
            return False
    return True


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

    def to_json_form(self, value: Any) -> Any:
        """`value` as JSON-like data (what the metadata DB keeps for an inline value)."""
        return value if is_plain_json(value) else self.to_jsonable(value)

    def from_json_form(self, jsonable: Any) -> Any:
        # Plain JSON is left as it is: from_jsonable must mark what it converts with "__" keys,
        # as serde does ("__classname__", "__type").
        return jsonable if is_plain_json(jsonable) else self.from_jsonable(jsonable)

    def dumps(self, value: Any) -> tuple[Any, bytes]:
        """The JSON-like form of `value` and its bytes: measured once, written as they are."""
        jsonable = self.to_json_form(value)
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
        # trust boundary: the source is bounded (BoundedReader), so json is never handed more
        # text than the budget, and its objects are a bounded multiple of that text.
        return self.from_json_form(json.loads(source.read()))
