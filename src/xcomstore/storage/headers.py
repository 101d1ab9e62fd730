"""Reading objects' headers where they lie: one object's, or every listed object's.

A header is at the start of an object, so reading it costs two small ranged reads whatever
the payload's size: this is what `ls`, `du`, gc and the UI are built on.
"""

from __future__ import annotations

from dataclasses import dataclass

from xcomstore.errors import XComStoreError
from xcomstore.format import container
from xcomstore.format.header import Header
from xcomstore.storage.location import Location, ObjectInfo


@dataclass(frozen=True)
class StoredObject:
    """An object found in the store, described by its own header (no metadata DB involved)."""

    uri: str
    size: int
    modified: float | None
    header: Header | None  # None when the object is unreadable
    error: str | None = None


def read_header(location: Location, relpath: str) -> Header:
    """An object's header, from two small ranged reads."""
    first = location.read_range(relpath, 0, container.PREFIX_SIZE)
    length = container.parse_prefix(first)
    end = container.PREFIX_SIZE + length
    return Header.from_bytes(location.read_range(relpath, container.PREFIX_SIZE, end))


def describe(location: Location, info: ObjectInfo) -> StoredObject:
    """A listed object with its header, or with the reason it cannot be read."""
    uri = location.uri(info.relpath)
    try:
        header = read_header(location, info.relpath)
    except XComStoreError as exc:
        return StoredObject(uri, info.size, info.modified, None, str(exc))
    return StoredObject(uri, info.size, info.modified, header)
