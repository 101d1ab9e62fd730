"""XComStore: put a value and get a reference, get a value back from a reference.

Plain Python with no Airflow metadata DB: the Airflow backend, the CLI and tests all use it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO, TypeVar, cast

from xcomstore.codecs import Codec, CodecRegistry, Description, JsonCodec
from xcomstore.codecs.arrow import ArrowCodec
from xcomstore.core import layout, policy, retention, signing, table_reads
from xcomstore.core.observe import Observer
from xcomstore.core.projection import WHOLE, Wants, apply, check_kind
from xcomstore.core.reference import Reference, is_reference
from xcomstore.core.routes import UNKNOWN_TEAM, Route, Team
from xcomstore.core.settings import Settings
from xcomstore.errors import (
    CorruptObjectError,
    ForgedReferenceError,
    ObjectNotFoundError,
    RejectedValueError,
    StoreAccessError,
    StoreUnavailableError,
    XComStoreError,
)
from xcomstore.format import blocks, checksum, compression, container
from xcomstore.format.container import OpenObject, Seal
from xcomstore.format.header import Header
from xcomstore.format.streams import Budget, CountingWriter
from xcomstore.identity import Origin, Wanted
from xcomstore.storage.headers import StoredObject, describe, read_header
from xcomstore.storage.location import Location, fsspec_filesystem
from xcomstore.storage.replicas import ReplicaSet
from xcomstore.storage.retry import RetryPolicy, is_store_error

log = logging.getLogger("xcomstore")
#: Resolves a configured URL to (fsspec filesystem, root path); see storage.location.fsspec_filesystem.
FilesystemOpener = Callable[[str], tuple[Any, str]]
_LIBRARIES = ("pyarrow", "numpy", "pandas", "polars")
T = TypeVar("T")


@dataclass(frozen=True)
class _Written:
    seal: Seal
    total: int  # bytes of the whole object
    size: int  # payload bytes before compression
    uris: tuple[str, ...]  # the copies that exist


class XComStore:
    """Decides inline or offloaded, and moves values between Python and the store.

    push(value, origin)    what the metadata DB keeps: the value as JSON, or a signed reference
                           (an offloaded value goes to the route its XCom and team take)
    pull(stored, wanted)   the value back from what the DB keeps, checked against the XCom read
                           and against the route that placed it
    purge(stored, wanted)  delete the copies behind a reference, when Airflow deletes its row
    read / verify / head / open_payload / list   the store alone, no metadata DB

    Where the bytes go is the replica set's business (storage/replicas.py), how they are laid
    out the object format's (format/container.py); this class decides and checks.
    """

    def __init__(
        self,
        settings: Settings,
        locations: tuple[Location, ...] | Callable[[], tuple[Location, ...]],
        codecs: CodecRegistry,
        observer: Observer | None = None,
    ) -> None:
        self.settings = settings
        self._locations = locations
        self.routing = settings.routing
        self._replicas: dict[Route, ReplicaSet] = {}
        self._opening = threading.Lock()  # reads of many values at once run on several threads
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

        def open_locations() -> tuple[Location, ...]:
            return tuple(Location(url, *opener(url), retry) for url in settings.routing.urls)

        codecs = CodecRegistry.configured(json_codec or JsonCodec(), settings.codecs)
        return cls(settings, open_locations, codecs, observer)

    @property
    def locations(self) -> tuple[Location, ...]:
        """Every configured location (`path`'s, then the routes', each once), opened on first
        use: inline values never need them, and opening a filesystem can be costly (Airflow
        loads its providers' filesystems)."""
        with self._opening:
            if callable(self._locations):
                self._locations = self._locations()
        return self._locations

    def replicas(self, route: Route) -> ReplicaSet:
        """A route's locations as one replica set: writes go to each, reads take the first good copy."""
        locations = self.locations
        with self._opening:
            if route not in self._replicas:
                by_url = {location.url: location for location in locations}
                chosen = [by_url[url] for url in route.urls]
                self._replicas[route] = ReplicaSet(chosen, self.settings.required_copies)
            return self._replicas[route]

    @property
    def location(self) -> Location:
        """The primary location: written first, read first, listed by default."""
        return self.locations[0]

    def locate(self, uri: str) -> tuple[Location, str]:
        """The configured location holding `uri`, and the object path inside it.

        A URI outside every configured location, or one that is not a path xcomstore writes,
        raises ForgedReferenceError: such a reference is never followed.
        """
        for location in self.locations:
            if uri.startswith(location.url + "/"):
                return location, layout.check_relative_path(location.relative(uri))
        configured = ", ".join(loc.url for loc in self.locations)
        raise ForgedReferenceError(f"is not inside the configured location(s) {configured}", uri=uri)

    # -- push ------------------------------------------------------------------------------
    def push(self, value: Any, origin: Origin, *, team: Team = None) -> Any:
        """What to keep in the metadata DB for `value`: itself as JSON, or a reference.

        Checks the allowed types and the size limit first: a rejected value stores nothing.
        `team` is the team of the XCom's DAG (Airflow's multi-team mode), for `team=` routes.
        """
        policy.check_origin(origin)
        with _about(origin, ""):  # every refusal names the XCom
            return self._place(value, origin, team)

    def _place(self, value: Any, origin: Origin, team: Team) -> Any:
        json_codec = self.codecs.json
        if origin.key in self.settings.inline_keys:
            return self._inline_key(value)
        binary = self.codecs.binary_for(value)
        codec = binary or json_codec
        described = codec.describe(value)
        policy.check_type(self.settings, origin, codec.name, described.type_name)
        if binary is not None:
            hint = binary.size_hint(value)
            policy.check_size(self.settings, origin, hint)
            if hint <= self.settings.threshold:
                with contextlib.suppress(TypeError):  # Airflow cannot store it as JSON at all
                    jsonable, data = json_codec.dumps(value)
                    if len(data) <= self.settings.threshold:
                        self.observer.inline(origin, len(data))
                        return jsonable
            return self._reference(self.offload(value, binary, described, origin, team=team))
        jsonable, data = self._dumps(value)
        policy.check_size(self.settings, origin, len(data))
        # A small value that looks like a reference is offloaded, so it is never misread.
        if len(data) <= self.settings.threshold and not is_reference(jsonable):
            self.observer.inline(origin, len(data))
            return jsonable
        return self._reference(self.offload(data, json_codec, described, origin, team=team))

    def _dumps(self, value: Any) -> tuple[Any, bytes]:
        """The value's JSON form; a value nothing can store is rejected."""
        try:
            return self.codecs.json.dumps(value)
        except (TypeError, ValueError) as exc:
            kind = f"{type(value).__module__}.{type(value).__qualname__}"
            raise RejectedValueError(f"cannot store a {kind}: {exc}. Nothing was stored.") from exc

    def _inline_key(self, value: Any) -> Any:
        """Keys Airflow reads from the DB itself stay inline; they can't hold a reference lookalike."""
        jsonable = self.codecs.json.to_json_form(value)
        if is_reference(jsonable):
            raise RejectedValueError(
                "must stay in the metadata DB, but its value looks like an xcomstore reference and "
                "would be misread. Nothing was stored."
            )
        return jsonable

    def _reference(self, ref: Reference) -> dict[str, Any]:
        """The reference as kept in the DB: JSON, signed when signing keys are set."""
        return signing.sign(ref.to_json(), self.settings.signing_keys)

    def _parse(self, stored: Any) -> Reference:
        """A stored reference, checked for shape and (with signing keys) for its signature."""
        ref = Reference.from_json(stored)
        signing.check(stored, self.settings.signing_keys)
        return ref

    def offload(
        self, payload: Any, codec: Codec, described: Description, origin: Origin, *, team: Team = None
    ) -> Reference:
        """Write one object for `origin` to every location of its route; the reference comes
        once enough copies exist."""
        route = self.routing.choose(origin, team)
        replicas = self.replicas(route)
        relpath = layout.object_path(origin)
        header = self._header(codec, described, origin, payload)
        started = time.perf_counter()
        first = replicas.locations[0]
        what = f"write {first.uri(relpath)}"
        with self._reported("write", origin, first.uri(relpath)):
            written = first.retry.run(
                what,
                lambda: _within(
                    what,
                    self.settings.write_timeout,
                    lambda abandoned: self._write(replicas, relpath, header, codec, payload, abandoned),
                ),
            )
        ref = Reference(
            uri=written.uris[0],
            type_name=described.type_name,
            summary=described.summary,
            codec=codec.name,
            compression=str(container.reference_fields(header)["compression"]),
            size=written.size,
            stored_bytes=written.total,
            checksum=checksum.label(header.checksum, written.seal.digest),
            replicas=written.uris[1:],
            expires=header.expires,
            # Only with routes configured: references stay as they were for everyone else.
            route=route.fingerprint if self.settings.routes else None,
        )
        self.observer.stored(origin, ref, time.perf_counter() - started)
        return ref

    def _header(self, codec: Codec, described: Description, origin: Origin, payload: Any) -> Header:
        settings = self.settings
        blocked = isinstance(codec, ArrowCodec)  # tables are stored as blocks (format/blocks.py)
        native = not blocked and settings.compression in codec.native_compression
        # A codec that compresses natively gets an uncompressed stream, and says so in meta.
        compressed = blocked or (not native and self._worth_compressing(codec, payload))
        created = datetime.now(timezone.utc)
        expires = retention.expiry(origin, created, settings.retention, settings.retention_rules)
        return Header(
            codec=codec.name,
            compression=settings.compression if compressed else "none",
            type_name=described.type_name,
            summary=described.summary,
            origin=origin,
            created=_iso(created),
            expires=_iso(expires) if expires else None,
            meta={**described.meta, **({"compression": settings.compression} if native else {})},
            producer=_producer(),
            encryption=settings.encryption.new_params() if settings.encryption else None,
            checksum=settings.checksum,
            layout="blocks" if blocked else "stream",
        )

    def _worth_compressing(self, codec: Codec, payload: Any) -> bool:
        """False for a payload the stream compressor would not shrink by an eighth, judged from
        the codec's sample of it (random bytes, media, archives): compressing it would cost
        CPU on every write and read for nothing, so it is stored as it is, and its reference
        says "none"."""
        sample = codec.sample(payload)
        level = self.settings.compression_level
        return sample is None or compression.shrinks(self.settings.compression, sample, level)

    def _write(
        self,
        replicas: ReplicaSet,
        relpath: str,
        header: Header,
        codec: Codec,
        payload: Any,
        abandoned: threading.Event,
    ) -> _Written:
        """One attempt: encode the value once into every copy, then publish the copies."""
        replica = replicas.begin_write(relpath, self._missing_copy)
        native = "compression" in header.meta  # the codec compresses, the stream does not
        sizes: list[int] = []

        def encode(stream: BinaryIO) -> None:
            counter = CountingWriter(stream, self.settings.max_size)
            own = codec.encode(payload, counter, self.settings.compression if native else "none")  # type: ignore[arg-type]
            sizes.append(counter.count if own is None else own)

        try:
            if header.layout == "blocks":
                assert isinstance(codec, ArrowCodec)
                table = codec.blocks(payload)
                seal, size = blocks.write_blocked(
                    replica.stream,
                    header,
                    table.columns,
                    table.groups,
                    table.schema,
                    table.blocks,
                    keyring=self.settings.encryption,
                    level=self.settings.compression_level,
                    limit=self.settings.max_size,
                )
                sizes.append(size)
            else:
                seal = container.write_object(
                    replica.stream,
                    header,
                    encode,
                    level=self.settings.compression_level,
                    keyring=self.settings.encryption,
                )
        except BaseException:
            replica.abort()
            raise
        if abandoned.is_set():  # the caller gave up on this attempt: publish nothing
            replica.abort()
            raise TimeoutError("write abandoned after its time limit")
        uris = replica.commit()
        total = container.PREFIX_SIZE + len(header.to_bytes()) + seal.length + container.SEAL_SIZE
        return _Written(seal, total, sizes[0], uris)

    def _missing_copy(self, reason: str) -> None:
        self.observer.failed("replica write", StoreUnavailableError(reason))

    # -- pull ------------------------------------------------------------------------------
    def pull(
        self,
        stored: Any,
        wanted: Wanted | None = None,
        *,
        team: Team = UNKNOWN_TEAM,
        columns: Sequence[str] | None = None,
        to: str | None = None,
    ) -> Any:
        """The value for what the metadata DB holds: a reference is read, JSON is decoded.

        `wanted` names the XCom being read, when the caller knows it: errors then name it, and
        a reference that belongs to another XCom (copied from another row) is refused. `team`
        is the team of the XCom's DAG where the caller knows it, for the route check.
        `columns` and `to` project and convert a table (core/projection.py); a table stored as
        blocks is read only as far as they need.
        """
        if not is_reference(stored):
            with self._reported("read", wanted or "", ""):
                return apply(self.codecs.json.from_json_form(stored), Wants.of(columns, to))
        with self._reported("read", wanted or "", str(stored.get("uri"))):
            ref = self._parse(stored)
        return self.read_reference(ref, wanted, team=team, columns=columns, to=to)

    def read_reference(
        self,
        ref: Reference,
        wanted: Wanted | None = None,
        *,
        team: Team = UNKNOWN_TEAM,
        columns: Sequence[str] | None = None,
        to: str | None = None,
    ) -> Any:
        """Read the value, trying each copy in order; every copy must check out against `ref`."""
        started = time.perf_counter()
        with self._reported("read", wanted or "", ref.uri):
            wants = Wants.of(columns, to)
            check_kind(ref.codec, ref.type_name, wants)
            targets = self._targets(ref, wanted, team)  # refuse a forged copy up front
        origin = layout.origin_of(targets[0][1])
        with self._reported("read", origin, ref.uri):
            value = self._first_good(targets, lambda loc, rel: self._decode(loc, rel, ref, wants))
        self.observer.loaded(ref, time.perf_counter() - started)
        return value

    def read(self, uri: str, *, columns: Sequence[str] | None = None, to: str | None = None) -> Any:
        """Read a value by its URI alone, with no metadata DB: the object's header suffices."""
        with self._reported("read", "", uri):
            wants = Wants.of(columns, to)
            location, relpath = self.locate(uri)
        with self._reported("read", layout.origin_of(relpath), uri):
            return self._first_good(
                [(location, relpath)], lambda loc, rel: self._decode(loc, rel, None, wants)
            )

    def _targets(self, ref: Reference, wanted: Wanted | None, team: Team) -> list[tuple[Location, str]]:
        """Where the copies of `ref` are, each inside a configured location, of the XCom
        `wanted` (when known), and where the route that placed it writes."""
        targets = [self.locate(uri) for uri in ref.uris]
        if wanted is not None and not all(layout.belongs_to(rel, wanted) for _, rel in targets):
            raise ForgedReferenceError(f"the reference belongs to another XCom, not to {wanted}")
        self._check_route(ref, targets, wanted, team)
        return targets

    def _check_route(
        self, ref: Reference, targets: list[tuple[Location, str]], wanted: Wanted | None, team: Team
    ) -> None:
        """Refuse a reference into a location the route that placed it does not write to.

        trust boundary: `ref.route` is what the row says (signed, with signing keys). A route
        with that fingerprint still exists only if the rules deciding it are unchanged, so the
        XCom must still take it and every copy lie in its locations. With no fingerprint
        (written without routes) or an unknown one (the routes changed since it was written),
        any configured location is accepted: old objects stay readable where they are.
        """
        if ref.route is None:
            return
        route = self.routing.by_fingerprint(ref.route)
        if route is None:
            log.info("xcomstore: %s was written under other routes; reading it where it is", ref.uri)
            return
        origin = _routed_origin(targets[0][1], wanted)
        if route not in self.routing.possible(origin, team):
            raise ForgedReferenceError(
                f"the reference says {route.name} placed it, which does not route XCom {origin}"
            )
        for location, relpath in targets:
            if location.url not in route.urls:
                raise ForgedReferenceError(
                    f"the reference leads into {location.url}, where {route.name} does not route "
                    f"XCom {origin} (it writes to {', '.join(route.urls)})",
                    uri=location.uri(relpath),
                )

    def _first_good(self, targets: list[tuple[Location, str]], read: Callable[[Location, str], Any]) -> Any:
        # read_first reads the targets it is given, wherever they are; any route's set will do.
        return self.replicas(self.routing.fallback).read_first(targets, read, self._failed_over)

    def _failed_over(self, uri: str, error: XComStoreError) -> None:
        self.observer.failed("read copy", type(error)(f"{uri}: {error}; trying the next copy"))

    def _decode(
        self, location: Location, relpath: str, ref: Reference | None = None, wants: Wants = WHOLE
    ) -> Any:
        """The value of one copy. Read through a reference, the object must be the one it
        names (checksum, codec, compression, type, expiry) and decodes to no more than its
        `size`; always no more than max_size: a small hostile object cannot decode to a huge one."""
        budget = Budget.for_read(ref.size if ref else None, self.settings.max_size)
        keyring = self.settings.encryption

        def vet(header: Header) -> None:
            self._check_header(relpath, header, ref)
            check_kind(header.codec, header.type_name, wants)
            if ref is not None and header.layout == "blocks" and header.meta.get("flavour") != ref.type_name:
                # The flavour steers the decoding, as below: it must be the reference's type.
                raise CorruptObjectError(
                    f"the object's flavour {header.meta.get('flavour')!r} differs from the reference in "
                    f"'type' (the reference says {ref.type_name!r}): its header was rewritten"
                )

        if wants.columns is not None:  # a table stored as blocks is read by ranges
            checksum = ref.checksum if ref else None
            ranged = table_reads.open_ranged(location, relpath, checksum, keyring, vet)
            if ranged is not None:
                return ranged.table(wants, budget, lambda wanted: table_reads.fetch(ranged, wanted))
        with location.reader(relpath) as (stream, stored):
            obj = self._open(relpath, stream, stored, ref.checksum if ref else None)
            vet(obj.header)
            codec = self.codecs.by_name(obj.header.codec)
            if obj.header.layout == "blocks":
                whole = table_reads.open_streamed(location, relpath, obj, keyring)
                return whole.table(wants, budget, lambda _: table_reads.streamed(whole, stream))
            value = container.decode_payload(
                obj, lambda s: codec.decode(s, obj.header.meta), self.settings.encryption, budget
            )
        if ref is not None and codec is not self.codecs.json and codec.type_name(value) != ref.type_name:
            # trust boundary: the header's meta (a flavour, a class) is not in the reference,
            # and whoever can write to the store can reseal a header: the value must still be
            # of the type the reference names. (JSON values are what serde makes of the text.)
            raise CorruptObjectError(
                f"the decoded value differs from the reference in 'type' ({codec.type_name(value)!r}, "
                f"the reference says {ref.type_name!r}): its header was rewritten"
            )
        return apply(value, wants)

    def _check_header(self, relpath: str, header: Header, ref: Reference | None) -> None:
        if layout.object_path(header.origin) != relpath:
            raise CorruptObjectError(f"the object's header says it holds XCom {header.origin}")
        if ref is not None:
            # trust boundary: the reference (signed, when signing keys are set) says what
            # the object must be; a header that disagrees was swapped or rewritten.
            # (No "expires" in a reference means none: the header must not invent one.)
            container.check_against(header, {**ref.to_json(), "expires": ref.expires})

    def _open(self, relpath: str, stream: BinaryIO, size: int, expected_checksum: str | None) -> OpenObject:
        obj = container.open_object(stream, size, expected_checksum)
        if layout.object_path(obj.header.origin) != relpath:
            raise CorruptObjectError(f"the object's header says it holds XCom {obj.header.origin}")
        return obj

    # -- delete, inspect -------------------------------------------------------------------
    def purge(self, stored: Any, wanted: Wanted | None = None, *, team: Team = UNKNOWN_TEAM) -> bool:
        """Delete every copy behind a stored reference; False if `stored` is not a reference.

        With `wanted` (the XCom being deleted), a reference to another XCom's object is refused;
        so is one into a location its route does not write to, as on a read.
        """
        if not is_reference(stored):
            return False
        with self._reported("purge", wanted or "", str(stored.get("uri"))):
            ref = self._parse(stored)
            targets = self._targets(ref, wanted, team)
            deleted = [location.delete(relpath) for location, relpath in targets]
        return any(deleted)

    def verify(self, uri: str) -> Header:
        """Check an object's format, origin and checksum without decoding it."""
        location, relpath = self.locate(uri)
        with _about(layout.origin_of(relpath), uri), location.reader(relpath) as (stream, size):
            obj = self._open(relpath, stream, size, None)
            table_reads.verify_copy(location, relpath, obj, self.settings.encryption)
            return obj.header

    @contextlib.contextmanager
    def open_payload(self, uri: str) -> Iterator[tuple[Header, BinaryIO]]:
        """The header and the decompressed payload stream, unverified: for previews that read
        only the start of a large value. Use read() to get a whole, verified value."""
        location, relpath = self.locate(uri)
        with _about(layout.origin_of(relpath), uri), location.reader(relpath) as (stream, size):
            obj = self._open(relpath, stream, size, None)
            if obj.header.layout == "blocks":  # an Arrow stream, a verified row group a batch
                whole = table_reads.open_streamed(location, relpath, obj, self.settings.encryption)
                budget = Budget.for_read(None, self.settings.max_size)
                batches = io.BufferedReader(table_reads.as_stream(whole, budget), 1 << 20)
                yield obj.header, cast(BinaryIO, batches)
                return
            plain, _ = container.plaintext_stream(obj, self.settings.encryption)
            try:
                budget = Budget.for_read(None, self.settings.max_size)  # no reference: max_size
                yield obj.header, compression.decompressing_reader(obj.header.compression, plain, budget)
            finally:
                plain.close()  # a preview reads part of the payload: stop its hashing thread

    def head(self, uri: str) -> Header:
        """An object's header, read from its first bytes only."""
        location, relpath = self.locate(uri)
        with _about(layout.origin_of(relpath), uri):
            return read_header(location, relpath)

    def list(
        self, dag_id: str | None = None, run_id: str | None = None, *, location: Location | None = None
    ) -> Iterator[StoredObject]:
        """Every object in a location (the primary by default), or of one DAG or run, with its header."""
        where = location or self.location
        prefix = layout.run_prefix(dag_id, run_id) if dag_id else ""
        with _about("", f"{where.url}/{prefix}".rstrip("/")):
            for info in where.list(prefix):
                yield describe(where, info)

    @contextlib.contextmanager
    def _reported(self, operation: str, xcom: Origin | Wanted | str, uri: str) -> Iterator[None]:
        """Name the XCom and URI in any error, and tell the observer about it."""
        try:
            with _about(xcom, uri):
                yield
        except XComStoreError as exc:
            self.observer.failed(operation, exc)
            raise


def _routed_origin(relpath: str, wanted: Wanted | None) -> Origin:
    """The XCom an object path holds, as the routes see it: the full names from `wanted`
    where it has them (a path holds long names shortened)."""
    origin = layout.origin_of(relpath)
    if wanted is None:
        return origin
    run_id = origin.run_id if wanted.run_id is None else wanted.run_id
    return Origin(
        dag_id=wanted.dag_id,
        run_id=run_id,
        task_id=wanted.task_id,
        map_index=origin.map_index,
        key=wanted.key,
    )


def _within(what: str, seconds: float, attempt: Callable[[threading.Event], T]) -> T:
    """Run one attempt on a worker thread and give up on it after `seconds`.

    A stalled connection can block a client library forever (e.g. an upload waiting for a
    '100 Continue' that never comes). The abandoned attempt is told so, and aborts instead of
    publishing anything if it ever wakes up.
    """
    abandoned = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = attempt(abandoned)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="xcomstore-write", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        abandoned.set()
        raise TimeoutError(f"{what} took longer than {seconds:.0f}s ([xcomstore] write_timeout)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


@contextlib.contextmanager
def _about(xcom: Origin | Wanted | str, uri: str) -> Iterator[None]:
    """Say which XCom and URI any error concerns; a raw store error becomes an xcomstore one.

    This is the edge of every public call: nothing but XComStoreError leaves it for the store's
    sake (a programming error, a TypeError say, still shows as itself)."""
    try:
        yield
    except XComStoreError as exc:
        exc.about(uri=uri, xcom=xcom)
        raise
    except Exception as exc:
        if not is_store_error(exc):
            raise
        raise _store_error(exc).about(uri=uri, xcom=xcom) from exc


def _store_error(exc: BaseException) -> XComStoreError:
    """The xcomstore error for a raw one from a store (after retries, where retrying helps)."""
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFoundError(f"no such object ({reason})")
    if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError)):
        return StoreAccessError(f"the store refused: {reason}")
    return StoreUnavailableError(reason)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _producer() -> dict[str, str]:
    """Versions that wrote the object: a reader with other versions can tell what to expect."""
    from xcomstore.version import __version__

    versions = {"xcomstore": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "__version__", None), str):
            versions[name] = module.__version__
    return versions
