"""Reading tables stored as blocks (format/blocks.py): some columns by ranged reads, or all of them.

A read of some columns fetches the object's first bytes (prefix and header) and last bytes
(seal, index trailer and, mostly, the index) together, then only the wanted columns' blocks:
a column's blocks lie side by side, so each column is one or a few ranged reads, fetched
concurrently. A whole read streams the object front to back as any other, with one ranged read
of its end first: each block is verified against the index before it is decoded.

Either way, what is returned was checked the same way: the seal covers header and index (and
matches the reference's checksum), the index covers every block read, and each block is
decrypted, hashed, charged to the read's Budget and decompressed before Arrow sees it.
Blocks are opened (decrypted, hashed, decompressed) on a few threads, in order.
"""

from __future__ import annotations

import io
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from xcomstore.codecs import arrow
from xcomstore.codecs.arrow_blocks import PieceSink, assemble, pandas_index_columns, read_schema
from xcomstore.core.projection import Wants, flavour_for, selection
from xcomstore.errors import ObjectFormatError
from xcomstore.format import blocks, container
from xcomstore.format.blocks import Block, BlockIndex, Raw
from xcomstore.format.container import OpenObject, Seal
from xcomstore.format.encryption import Keyring
from xcomstore.format.header import Header
from xcomstore.format.streams import Budget
from xcomstore.storage.location import Location

_HEAD: Final = 16 << 10  # the first bytes read: prefix and header (a header is ~1 KB)
_RANGE: Final = 64 << 20  # neighbouring blocks are fetched together up to this size
_OPENERS: Final = 2
_AHEAD: Final = 4


@dataclass(frozen=True)
class BlockedObject:
    """A blocked object whose header, seal and index are verified: what its blocks are read by."""

    location: Location
    relpath: str
    header: Header
    payload_start: int
    index: BlockIndex
    keyring: Keyring | None

    def table(self, wants: Wants, budget: Budget, raws: Callable[[list[int]], Iterator[Raw]]) -> Any:
        """The value `wants` asks for, from the raw blocks of the selected columns (`raws`:
        every selected column's blocks in order, given the selected columns)."""
        schema = read_schema(self.index.schema, self.index.columns)
        flavour = flavour_for(str(self.header.meta.get("flavour")), wants)
        hidden = pandas_index_columns(schema) if flavour.startswith("pandas") else []
        wanted = selection(self.index.columns, hidden, wants)
        # trust boundary: what the selected blocks decompress to is claimed by the index (which
        # the seal vouches for, not the reference): charged before anything is fetched.
        budget.take(sum(b.raw for c in wanted for b in self.index.of_column(c)))
        stream = raws(wanted)
        per_column = len(self.index.groups)
        frame = flavour != "pyarrow.Table"
        try:
            table = assemble(
                schema,
                wanted,
                self.index.groups,
                lambda _: itertools.islice(stream, per_column),
                budget,
                frame,
            )
        finally:
            # Ends the opening threads now, in this thread, also when a block was refused: left
            # to the garbage collector, their pool would be shut down from whatever thread it runs in.
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return arrow.from_table(table, flavour, self.header.meta)

    def open(
        self,
        stored: Iterable[tuple[Block, Raw]],
        opener: Callable[..., Raw] = blocks.open_block,
        threaded: bool = True,
    ) -> Iterator[Raw]:
        """The raw bytes of each (block, stored bytes), in order, opened on a few threads (or
        what `opener` makes of them: blocks.check_block only verifies)."""
        if not threaded:
            for block, data in stored:
                yield opener(data, block, self.header, self.keyring)
            return
        with ThreadPoolExecutor(_OPENERS, thread_name_prefix="xcomstore-open") as pool:
            pending: deque[Future[Raw]] = deque()
            for block, data in stored:
                pending.append(pool.submit(opener, data, block, self.header, self.keyring))
                if len(pending) > _AHEAD:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def open_ranged(
    location: Location,
    relpath: str,
    expected_checksum: str | None,
    keyring: Keyring | None,
    check: Callable[[Header], None],
) -> BlockedObject | None:
    """The object's header, seal and index from ranged reads of its ends; None if it is not
    laid out as blocks (an older object: read it whole). `check` vets the header (origin,
    reference) once the seal has authenticated it."""
    tail_size = blocks.FIRST_TAIL + container.SEAL_SIZE
    head, tail = location.read_ranges(relpath, [(0, _HEAD), (-tail_size, None)])
    needed = container.payload_offset(container.parse_prefix(head))
    if len(head) < needed:
        head += location.read_range(relpath, len(head), needed)
    if container.prefix_version(head) < container.AUTHENTICATED_VERSION:
        return None
    header, seal, start = container.sealed_ends(head, tail, expected_checksum)
    if header.layout != "blocks":
        return None
    check(header)
    payload_tail = tail[: len(tail) - container.SEAL_SIZE]
    return _with_index(location, relpath, header, seal, start, payload_tail, keyring)


def open_streamed(
    location: Location, relpath: str, obj: OpenObject, keyring: Keyring | None
) -> BlockedObject:
    """A blocked object opened as a stream (`obj`, positioned at its payload): its seal (if
    the stream could not be seeked to it) and index come from one ranged read of its end."""
    tail_size = blocks.FIRST_TAIL + container.SEAL_SIZE
    # Absolute offsets: the object's size is known here, and a range from the end would cost
    # stores that cannot answer one a request for the size (Location.read_range).
    end = obj.payload_start + obj.payload_length + container.SEAL_SIZE
    tail = location.read_range(relpath, end - min(tail_size, obj.payload_length + container.SEAL_SIZE), end)
    seal_bytes = tail[-container.SEAL_SIZE :]
    seal = obj.take_seal(seal_bytes) if not obj.header_authenticated else obj.seal
    payload_tail = tail[: len(tail) - container.SEAL_SIZE]
    return _with_index(location, relpath, obj.header, seal, obj.payload_start, payload_tail, keyring)


def _with_index(
    location: Location,
    relpath: str,
    header: Header,
    seal: Seal,
    start: int,
    payload_tail: bytes,
    keyring: Keyring | None,
) -> BlockedObject:
    """Find, fetch (unless `payload_tail`, the payload's last bytes, holds it) and open the index."""
    length = seal.length
    payload_tail = payload_tail[-length:] if length else b""
    first, end = blocks.index_span(payload_tail[-blocks.TRAILER_SIZE :], length)
    held = length - len(payload_tail)  # where payload_tail starts in the payload
    if first >= held:
        stored = payload_tail[first - held : end - held]
    else:
        stored = location.read_range(relpath, start + first, start + end)
    index = blocks.open_index(stored, header, keyring, seal.digest)
    blocks.check_extent(index, first)
    return BlockedObject(location, relpath, header, start, index, keyring)


def fetch(obj: BlockedObject, columns: list[int]) -> Iterator[Raw]:
    """The raw blocks of `columns` (in that order), by concurrent ranged reads."""
    wanted = [b for c in columns for b in obj.index.of_column(c)]
    ranges = blocks.coalesce(wanted, _RANGE)
    spans = [(obj.payload_start + first, obj.payload_start + end) for first, end, _ in ranges]
    fetched = obj.location.read_ranges(obj.relpath, spans)
    stored: dict[int, memoryview] = {}
    for (first, _, members), data in zip(ranges, fetched, strict=True):
        view = memoryview(data)
        for block in members:  # views, not copies: the range's bytes are freed with its last block
            stored[block.number] = view[block.start - first : block.end - first]
    del fetched
    return obj.open((block, stored.pop(block.number)) for block in wanted)


def streamed(obj: BlockedObject, source: BinaryIO) -> Iterator[Raw]:
    """Every block's raw bytes, read in order from `source` (positioned at the payload)."""
    return obj.open(stored(obj, source))


def stored(obj: BlockedObject, source: BinaryIO) -> Iterator[tuple[Block, bytes]]:
    """Every block and its stored bytes, read in order from `source` (positioned at the payload)."""
    return ((block, _exactly(source, block.stored)) for block in obj.index.blocks)


def verify_copy(location: Location, relpath: str, obj: OpenObject, keyring: Keyring | None) -> None:
    """Check a whole object (`obj`, opened from `location`) against its seal, decoding nothing:
    a blocked one block by block against its index (verify, repair)."""
    if obj.header.layout != "blocks":
        container.verify_payload(obj, keyring)
        return
    whole = open_streamed(location, relpath, obj, keyring)
    for _ in whole.open(stored(whole, obj.source), blocks.check_block):
        pass


def reencrypt(
    location: Location, relpath: str, obj: OpenObject, keyring: Keyring, sink: BinaryIO, header: Header
) -> Seal:
    """Write the blocked object `obj` again into `sink` with `header` (its new encryption)."""
    whole = open_streamed(location, relpath, obj, keyring)
    return blocks.reencrypt(sink, whole.index, stored(whole, obj.source), obj.header, header, keyring)


def _exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        parts = [data]
        while (got := sum(map(len, parts))) < size and (more := source.read(size - got)):
            parts.append(more)
        data = b"".join(parts)
        if len(data) != size:
            raise ObjectFormatError(f"object is truncated: a block of {size} bytes has {len(data)}")
    return data


def as_stream(obj: BlockedObject, budget: Budget) -> io.RawIOBase:
    """The table as an Arrow IPC stream, one record batch a row group, made as it is read:
    the payload a stream object would have had, for previews (which read the first batch)
    and exports (a batch at a time). Each row group's blocks are fetched and verified as for
    any read."""
    return _Chunks(_ipc_chunks(obj, budget))


def _ipc_chunks(obj: BlockedObject, budget: Budget) -> Iterator[Raw]:
    import pyarrow as pa

    schema = read_schema(obj.index.schema, obj.index.columns)
    columns = list(range(len(obj.index.columns)))
    sink = PieceSink()
    collected = sink.pieces
    with pa.ipc.new_stream(sink, schema) as writer:
        yield from _drain(collected)
        for group, rows in enumerate(obj.index.groups):
            wanted = [obj.index.of_column(c)[group] for c in columns]
            budget.take(sum(b.raw for b in wanted))
            spans = [(obj.payload_start + b.start, obj.payload_start + b.end) for b in wanted]
            data = obj.location.read_ranges(obj.relpath, spans)
            raws = list(obj.open(zip(wanted, data, strict=True), threaded=False))  # a batch: small
            part = assemble(schema, columns, (rows,), _one_each(raws), budget, False)
            writer.write_table(part)
            yield from _drain(collected)
    yield from _drain(collected)


def _one_each(raws: list[Raw]) -> Callable[[int], list[Raw]]:
    """The raw blocks of one row group, by column."""
    return lambda column: raws[column : column + 1]


def _drain(collected: list[Raw]) -> Iterator[Raw]:
    while collected:
        yield collected.pop(0)


class _Chunks(io.RawIOBase):
    """A readable stream of the chunks an iterator makes."""

    def __init__(self, chunks: Iterator[Raw]) -> None:
        self._chunks = chunks
        self._head: Raw = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._head:
            self._head = next(self._chunks, b"")
            if not self._head:
                return 0
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._head))
        view[:size] = self._head[:size]
        self._head = self._head[size:]
        return size
