"""XComStore: put a value and get a reference, get a value back from a reference.

Plain Python with no Airflow metadata DB: the Airflow backend, the CLI and tests all use it.
"""

from __future__ import annotations

import contextlib
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

from xcomstore import compression, layout, objectformat
from xcomstore.codecs import Codec, CodecRegistry, Description, JsonCodec
from xcomstore.errors import CorruptObjectError, ForgedReferenceError, XComStoreError
from xcomstore.objectformat import Header, OpenObject, Origin
from xcomstore.observe import Observer
from xcomstore.reference import Reference, is_reference
from xcomstore.settings import Settings
from xcomstore.store import Location, ObjectInfo, RetryPolicy, fsspec_filesystem
from xcomstore.streams import CountingWriter, HashingReader

#: Resolves a configured URL to (fsspec filesystem, root path); see store.fsspec_filesystem.
FilesystemOpener = Callable[[str], tuple[Any, str]]
_LIBRARIES = ("pyarrow", "numpy", "pandas", "polars")


@dataclass(frozen=True)
class StoredObject:
    """An object found in the store, described by its own header (no metadata DB involved)."""

    uri: str
    size: int
    modified: float | None
    header: Header | None  # None when the object is unreadable
    error: str | None = None


class XComStore:
    """Decides inline or offloaded, and moves values between Python and the store."""

    def __init__(
        self,
        settings: Settings,
        location: Location,
        codecs: CodecRegistry,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.location = location
        self.codecs = codecs
        self.observer = observer or Observer()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        opener: FilesystemOpener = fsspec_filesystem,
        json_codec: JsonCodec | None = None,
        observer: Observer | None = None,
    ) -> XComStore:
        retry = RetryPolicy(settings.retries, settings.retry_timeout)
        fs, root = opener(settings.path)
        location = Location(settings.path, fs, root, retry)
        return cls(settings, location, CodecRegistry(json_codec or JsonCodec()), observer)

    # -- push ------------------------------------------------------------------------------
    def push(self, value: Any, origin: Origin) -> Any:
        """What to keep in the metadata DB for `value`: itself as JSON, or a reference."""
        json_codec = self.codecs.json
        if origin.key in self.settings.inline_keys:
            return json_codec.to_jsonable(value)
        binary = self.codecs.binary_for(value)
        if binary is not None:
            if binary.size_hint(value) <= self.settings.threshold:
                with contextlib.suppress(TypeError):  # Airflow cannot store it as JSON at all
                    jsonable, data = json_codec.dumps(value)
                    if len(data) <= self.settings.threshold:
                        self.observer.inline(origin, len(data))
                        return jsonable
            return self.offload(value, binary, binary.describe(value), origin).to_json()
        jsonable, data = json_codec.dumps(value)
        # A small value that looks like a reference is offloaded, so it is never misread.
        if len(data) <= self.settings.threshold and not is_reference(jsonable):
            self.observer.inline(origin, len(data))
            return jsonable
        return self.offload(data, json_codec, json_codec.describe(value), origin).to_json()

    def offload(self, payload: Any, codec: Codec, described: Description, origin: Origin) -> Reference:
        """Write one object for `origin`; the reference is returned only once it is complete."""
        relpath = layout.object_path(origin)
        uri = self.location.uri(relpath)
        compression = self.settings.compression
        native = compression in codec.native_compression
        header = Header(
            codec=codec.name,
            compression="none" if native else compression,
            type_name=described.type_name,
            summary=described.summary,
            origin=origin,
            created=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            meta={**described.meta, **({"compression": compression} if native else {})},
            producer=_producer(),
        )

        def write() -> tuple[objectformat.Seal, int, int]:
            counted: list[CountingWriter] = []
            uncompressed: list[int | None] = []

            def encode(stream: BinaryIO) -> None:
                counted.append(CountingWriter(stream))
                uncompressed.append(codec.encode(payload, counted[0], compression if native else "none"))  # type: ignore[arg-type]

            with self.location.writer(relpath) as sink:
                seal = objectformat.write_object(sink, header, encode, level=self.settings.compression_level)
            total = objectformat.PREFIX_SIZE + len(header.to_bytes()) + seal.length + objectformat.SEAL_SIZE
            return seal, total, uncompressed[0] or counted[0].count

        started = time.perf_counter()
        with self._reported("write", origin, uri):
            seal, total, size = self.location.retry.run(f"write {uri}", write)
        ref = Reference(
            uri=uri,
            type_name=described.type_name,
            summary=described.summary,
            codec=codec.name,
            compression=compression,
            size=size,
            stored_bytes=total,
            sha256=seal.sha256.hex(),
        )
        self.observer.stored(origin, ref, time.perf_counter() - started)
        return ref

    # -- pull ------------------------------------------------------------------------------
    def pull(self, stored: Any) -> Any:
        """The value for what the metadata DB holds: a reference is read, JSON is decoded."""
        if not is_reference(stored):
            return self.codecs.json.from_jsonable(stored)
        return self.read_reference(Reference.from_json(stored))

    def read_reference(self, ref: Reference) -> Any:
        started = time.perf_counter()
        with self._reported("read", "", ref.uri):
            relpath = self.location.relative(ref.uri)
        with self._reported("read", _origin_or_path(relpath), ref.uri):
            value = self.location.retry.run(f"read {ref.uri}", lambda: self._decode(relpath, ref.sha256))
        self.observer.loaded(ref, time.perf_counter() - started)
        return value

    @contextlib.contextmanager
    def _reported(self, operation: str, origin: Origin | str, uri: str) -> Iterator[None]:
        """Name the XCom and URI in any error, and tell the observer about it."""
        try:
            with _about(origin, uri):
                yield
        except XComStoreError as exc:
            self.observer.failed(operation, exc)
            raise

    def read(self, uri: str) -> Any:
        """Read a value by its URI alone, with no metadata DB: the object's header suffices."""
        relpath = self.location.relative(uri)
        with _about(_origin_or_path(relpath), uri):
            return self.location.retry.run(f"read {uri}", lambda: self._decode(relpath, None))

    def _decode(self, relpath: str, expected_sha256: str | None) -> Any:
        with self.location.reader(relpath) as (stream, size):
            obj = self._open(relpath, stream, size, expected_sha256)
            codec = self.codecs.by_name(obj.header.codec)
            return objectformat.decode_payload(obj, lambda s: codec.decode(s, obj.header.meta))

    def _open(self, relpath: str, stream: BinaryIO, size: int, expected_sha256: str | None) -> OpenObject:
        obj = objectformat.open_object(stream, size)
        if expected_sha256 is not None and obj.seal.sha256.hex() != expected_sha256:
            raise CorruptObjectError(
                "the object's checksum differs from the reference's: it was replaced or modified"
            )
        if layout.object_path(obj.header.origin) != relpath:
            raise CorruptObjectError(f"the object's header says it holds XCom {obj.header.origin}")
        return obj

    # -- delete, inspect -------------------------------------------------------------------
    def purge(self, stored: Any) -> bool:
        """Delete the object behind a stored reference; False if `stored` is not one."""
        if not is_reference(stored):
            return False
        ref = Reference.from_json(stored)
        relpath = layout.check_relative_path(self.location.relative(ref.uri))
        return self.location.delete(relpath)

    def verify(self, uri: str) -> Header:
        """Check an object's format, origin and checksum without decoding it."""
        relpath = self.location.relative(uri)
        with _about(_origin_or_path(relpath), uri), self.location.reader(relpath) as (stream, size):
            obj = self._open(relpath, stream, size, None)
            objectformat.verify_payload(obj)
            return obj.header

    @contextlib.contextmanager
    def open_payload(self, uri: str) -> Iterator[tuple[Header, BinaryIO]]:
        """The header and the decompressed payload stream, unverified: for previews that read
        only the start of a large value. Use read() to get a whole, verified value."""
        relpath = self.location.relative(uri)
        with _about(_origin_or_path(relpath), uri), self.location.reader(relpath) as (stream, size):
            obj = self._open(relpath, stream, size, None)
            bounded = HashingReader(obj.source, obj.seal.length)
            yield obj.header, compression.decompressing_reader(obj.header.compression, bounded)  # type: ignore[arg-type]

    def head(self, uri: str) -> Header:
        """An object's header, read from its first bytes only."""
        relpath = self.location.relative(uri)
        with _about(_origin_or_path(relpath), uri):
            return self._header(relpath)

    def _header(self, relpath: str) -> Header:
        first = self.location.read_range(relpath, 0, objectformat.PREFIX_SIZE)
        length = objectformat.parse_prefix(first)
        raw = self.location.read_range(relpath, objectformat.PREFIX_SIZE, objectformat.PREFIX_SIZE + length)
        return objectformat.Header.from_bytes(raw)

    def list(self, dag_id: str | None = None, run_id: str | None = None) -> Iterator[StoredObject]:
        """Every object in the store (or of one DAG, or one run), with its header."""
        prefix = layout.run_prefix(dag_id, run_id) if dag_id else ""
        for info in self.location.list(prefix):
            yield self._describe(info)

    def _describe(self, info: ObjectInfo) -> StoredObject:
        uri = self.location.uri(info.relpath)
        try:
            header = self._header(info.relpath)
        except XComStoreError as exc:
            return StoredObject(uri, info.size, info.modified, None, str(exc))
        return StoredObject(uri, info.size, info.modified, header)


def _origin_or_path(relpath: str) -> Origin | str:
    try:
        return layout.origin_of(relpath)
    except ForgedReferenceError:
        return relpath


@contextlib.contextmanager
def _about(origin: Origin | str, uri: str) -> Iterator[None]:
    """Prefix any xcomstore error with the XCom and the URI it concerns."""
    try:
        yield
    except XComStoreError as exc:
        subject = f"XCom {origin} at {uri}" if origin else uri
        raise type(exc)(f"{subject}: {exc}") from exc


def _producer() -> dict[str, str]:
    """Versions that wrote the object: a reader with other versions can tell what to expect."""
    from xcomstore import __version__

    versions = {"xcomstore": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "__version__", None), str):
            versions[name] = module.__version__
    return versions
