"""Which strings are paths that common-io's XCom backend wrote, and for which XCom.

Teams coming from `airflow.providers.common.io.xcom.backend.XComObjectStorageBackend` have
XCom rows whose value is the full URL of an object under `[common.io] xcom_objectstorage_path`
(connection id included). common-io 1.x wrote two shapes below that base, and nothing else:

    <dag_id>/<run_id>/<task_id>/<uuid4>[.json][.<suffix>]           serialize_value (1.x)
    <dag_id>/<run_id>/<task_id>/ti-<ti id>/<quoted key>.json[.<suffix>]   1.11's store_value (Airflow 3.4)

where `<suffix>` is the file suffix fsspec registers for the configured compression (`gz`,
`bz2`, `zst`, …). The object holds the value as UTF-8 JSON (Airflow's XComEncoder), compressed
as the suffix says.

trust boundary: a row's value is whoever-can-edit-XComs' text (the REST API and the UI write
rows). A string is taken for a common-io object only if it starts with the configured base
exactly and the rest is exactly one of these shapes (no `..`, no extra segment); whether it
was written for the XCom being read is `belongs_to`'s question. Any other string is a string.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

import fsspec.utils

from xcomstore.format import compression
from xcomstore.format.streams import BoundedReader, Budget, slack_for
from xcomstore.identity import Wanted
from xcomstore.storage.location import Location

#: The most a common-io value may decode to when [xcomstore] max_size sets no tighter limit:
#: common-io reads a value whole into memory, as JSON, so a legitimate one is well below this.
READ_LIMIT: Final = 2 << 30

# A dag, run or task id segment as joinpath wrote it: any text but a separator, a control
# character, or a `.`/`..` component. Its exact value is checked against the XCom by belongs_to.
_SEGMENT: Final = r"(?!\.\.?/)[^/\\\x00-\x1f\x7f]+"
_UUID4: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
_ANY_UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_HEAD: Final = rf"(?P<dag>{_SEGMENT})/(?P<run>{_SEGMENT})/(?P<task>{_SEGMENT})/"
_SUFFIX: Final = r"(?:\.(?P<suffix>[a-z0-9]{1,8}))?"
# The wheels 1.3-1.11 write no `.json` after the uuid; the name with it is accepted too, as the
# JSON text it holds (a build that adds it reads the same way).
_BY_UUID: Final = re.compile(rf"{_HEAD}{_UUID4}(?:\.json)?{_SUFFIX}")
# The key percent-quoted (or, past 200 characters, its SHA-256 in hex); the task instance id a
# UUID (Airflow 3) or a number.
_BY_TASK_INSTANCE: Final = re.compile(
    rf"{_HEAD}ti-(?:{_ANY_UUID}|[0-9]{{1,20}})/(?P<key>[A-Za-z0-9_.~%\-]{{1,1024}})\.json{_SUFFIX}"
)
_LONG_KEY: Final = 200


@dataclass(frozen=True)
class CommonIoObject:
    """One object common-io wrote, as its row names it."""

    uri: str  # the row's string, exactly
    relpath: str  # below the common-io base
    dag_id: str
    run_id: str
    task_id: str
    key: str | None  # the quoted key of a store_value path; None for a uuid4 name (no key in it)
    compression: str | None  # fsspec's name of the compression its suffix says, None for none

    def belongs_to(self, wanted: Wanted) -> bool:
        """Whether common-io wrote this object for the XCom being read (fields left open in
        `wanted` match anything; a uuid4 name carries no key and no map index)."""
        same = self.dag_id == wanted.dag_id and self.task_id == wanted.task_id
        same = same and (wanted.run_id is None or self.run_id == wanted.run_id)
        return same and (self.key is None or _key_matches(self.key, wanted.key))


def parse(value: Any, base: str) -> CommonIoObject | None:
    """The common-io object a row's value names, or None when it is not exactly such a path."""
    base = base.rstrip("/")
    if not base or not isinstance(value, str) or not value.startswith(base + "/"):
        return None
    found = parse_relpath(value[len(base) + 1 :])
    return None if found is None else _at(value, found)


def parse_relpath(relpath: str) -> CommonIoObject | None:
    """The common-io object at `relpath` below the base (its uri left empty), or None."""
    match = _BY_UUID.fullmatch(relpath) or _BY_TASK_INSTANCE.fullmatch(relpath)
    if match is None:
        return None
    parts = match.groupdict()
    suffix = parts["suffix"]
    compression = None if suffix is None else fsspec.utils.compressions.get(suffix)
    if suffix is not None and compression is None:  # not a suffix fsspec writes
        return None
    return CommonIoObject(
        uri="",
        relpath=relpath,
        dag_id=parts["dag"],
        run_id=parts["run"],
        task_id=parts["task"],
        key=parts.get("key"),
        compression=compression,
    )


def _at(uri: str, found: CommonIoObject) -> CommonIoObject:
    return CommonIoObject(
        uri, found.relpath, found.dag_id, found.run_id, found.task_id, found.key, found.compression
    )


def _key_matches(quoted: str, key: str) -> bool:
    if len(key) > _LONG_KEY and quoted == hashlib.sha256(key.encode()).hexdigest():
        return True
    return unquote(quoted) == key


# The compressions fsspec and xcomstore write alike (fsspec's zstd and lz4 are frames, as ours):
# read through xcomstore's bounded decompressors; any other through fsspec's own, bounded too.
_OURS: Final = {"gzip": "gzip", "zstd": "zstd", "lz4": "lz4"}


def read_limit(max_size: int | None) -> Budget:
    """What one common-io value may decode to: [xcomstore] max_size, at most READ_LIMIT."""
    if max_size is not None and max_size < READ_LIMIT:
        return Budget(max_size + slack_for(max_size), f"[xcomstore] max_size = {max_size} B")
    return Budget(READ_LIMIT, f"the {READ_LIMIT} B that xcomstore reads of a common-io value")


def fetch(location: Location, obj: CommonIoObject, max_size: int | None) -> bytes:
    """The object's stored bytes (retried as any read), no more than the read limit."""

    def attempt() -> bytes:
        with location.reader(obj.relpath) as (stream, _):
            return BoundedReader(stream, read_limit(max_size)).read()

    return location.retry.run(f"read {location.uri(obj.relpath)}", attempt)


def decompress(stored: bytes, obj: CommonIoObject, max_size: int | None) -> bytes:
    """The JSON text, decompressed as the object's suffix says, no more than the read limit.

    trust boundary: the bytes are whoever-can-write-the-bucket's; a few KB can expand to
    gigabytes, so decompression stops past the limit with an ObjectFormatError.
    """
    source = io.BytesIO(stored)
    budget = read_limit(max_size)
    if obj.compression is None or obj.compression in _OURS:
        name = "none" if obj.compression is None else _OURS[obj.compression]
        return compression.decompressing_reader(name, source, budget).read()
    from fsspec.compression import compr

    return BoundedReader(compr[obj.compression](source, mode="rb"), budget).read()
