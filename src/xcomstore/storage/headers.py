"""Reading objects' headers where they lie: one object's, or every listed object's.

A header is at the start of an object, so reading it costs two small ranged reads whatever
the payload's size: this is what `ls`, `du`, gc and the UI are built on. Authenticating it
against the seal (format version 3) costs a third, of the object's last bytes: gc, which
deletes on what a header says, pays it.
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
    # Whether the header was checked against the seal (format version 3 and later). Until then
    # anyone who can write to the store could have rewritten it: act on nothing it says alone.
    authenticated: bool = False


def read_header(location: Location, relpath: str) -> Header:
    """An object's header, from two small ranged reads."""
    first = location.read_range(relpath, 0, container.PREFIX_SIZE)
    length = container.parse_prefix(first)
    end = container.PREFIX_SIZE + length
    return Header.from_bytes(location.read_range(relpath, container.PREFIX_SIZE, end))


def read_sealed_header(location: Location, relpath: str, size: int) -> tuple[Header, bool]:
    """An object's header and whether its seal authenticates it (one more ranged read, of the
    seal at the end). A version 3 header that its seal does not match is a CorruptObjectError."""
    first = location.read_range(relpath, 0, container.PREFIX_SIZE)
    end = container.PREFIX_SIZE + container.parse_prefix(first)
    head = first + location.read_range(relpath, container.PREFIX_SIZE, end)
    tail = location.read_range(relpath, max(end, size - container.SEAL_SIZE), size)
    return container.sealed_header(head, tail, size)


def describe(location: Location, info: ObjectInfo, *, authenticate: bool = False) -> StoredObject:
    """A listed object with its header, or with the reason it cannot be read. With
    `authenticate`, the header is checked against the seal too (what gc acts on)."""
    uri = location.uri(info.relpath)
    try:
        if authenticate:
            header, authenticated = read_sealed_header(location, info.relpath, info.size)
        else:
            header, authenticated = read_header(location, info.relpath), False
    except XComStoreError as exc:
        return StoredObject(uri, info.size, info.modified, None, str(exc))
    return StoredObject(uri, info.size, info.modified, header, authenticated=authenticated)
