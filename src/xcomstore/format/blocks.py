"""A table's payload as blocks: each one read, decrypted and verified on its own, found by an index.

    payload    block 0 | block 1 | … | block n-1 | index | index length, u64 BE | INDEX_MAGIC
    block i    compress(raw bytes i) — its "plain" bytes — then, when the object is encrypted,
               AES-256-GCM with the nonce (object nonce XOR i), the 16-byte tag after it
    index      JSON, encrypted like a block of number INDEX_NUMBER:
               {"columns": [names], "groups": [rows of each row group], "schema": base64,
                "blocks": [[plain length, raw length, digest hex], …]}

Blocks are one column of one row group each, column by column (block c * groups + g), so the
blocks of a column lie side by side and a reader of a few columns fetches a few ranges. Where a
block lies follows from the lengths before it: the index holds no offsets to get wrong.

The payload digest, in the seal and in the reference's checksum, is

    H(INDEX_DOMAIN || index plain bytes)     H: the header's checksum algorithm

so what vouches for the whole payload vouches for the index, and the index for each block's
plain bytes: a block read alone is as verified as the whole payload, and the whole payload is
verified block by block. Encryption binds each block to its place (the nonce is the object's,
changed by the block's number): a block moved, swapped or taken from another object fails its
tag. The domain string keeps an index's digest from equalling a stream payload's: and only an
"arrow" object may be laid out as blocks (container.parse_header), whose stream payloads start
with Arrow's marker, never with the domain.

trust boundary: everything here comes from the store. The index is parsed strictly only once it
matches the seal's digest; each block is decrypted and hashed before it is decompressed, and
decompressed to exactly the raw length the index claims, which the caller has charged to the
read's Budget first.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Final

from xcomstore.errors import CorruptObjectError, ObjectFormatError, RejectedValueError
from xcomstore.format import checksum, compression, container
from xcomstore.format.container import Seal
from xcomstore.format.encryption import TAG_SIZE, Keyring
from xcomstore.format.header import Header

#: A block's bytes: bytes, or a view into a range read for several blocks (no copy).
Raw = bytes | memoryview
#: A block to write, as the pieces it is made of, in order (a table's own buffers: no copy).
Pieces = Sequence[Raw]

INDEX_DOMAIN: Final = b"xcomstore v4 block index\x00"
INDEX_MAGIC: Final = b"XCBLKIX\n"
INDEX_NUMBER: Final = (1 << 64) - 1  # the index's nonce counter: no block can have it
_TRAILER = struct.Struct(">Q8s")
TRAILER_SIZE: Final = _TRAILER.size
# An index is ~80 bytes a block plus the schema; the cap keeps a corrupt length from a huge read.
MAX_INDEX_SIZE: Final = 64 << 20
#: How much of the payload's end a reader fetches first: the trailer, and most indexes.
FIRST_TAIL: Final = 64 << 10
_IN_FLIGHT_PER_WORKER = 2
# Unless [xcomstore] compression_level says otherwise, tables are compressed as Arrow's own IPC
# compression did before they were stored as blocks (zstd level 1: random floats at ~4x the
# speed of level 3, for a few per cent of size): a push of a frame is no slower than it was.
_TABLE_LEVELS: Final = {"zstd": 1}


@dataclass(frozen=True)
class Block:
    """One block as the index describes it; `start` is its offset in the payload."""

    number: int
    start: int
    stored: int  # bytes in the payload (plain, plus the tag when encrypted)
    plain: int  # compressed bytes: what the digest covers
    raw: int  # bytes once decompressed: what the decoder reads
    digest: bytes

    @property
    def end(self) -> int:
        return self.start + self.stored


@dataclass(frozen=True)
class BlockIndex:
    """The columns, row groups and blocks of a blocked payload, and the table's schema (opaque
    here: the codec's)."""

    columns: tuple[str, ...]
    groups: tuple[int, ...]
    schema: bytes
    blocks: tuple[Block, ...]
    plain: bytes = b""  # the index as written (decrypted): what the payload digest covers

    def of_column(self, column: int) -> tuple[Block, ...]:
        """The blocks of one column, in row order."""
        count = len(self.groups)
        return self.blocks[column * count : (column + 1) * count]


# -- writing -------------------------------------------------------------------------------------
class BlockWriter:
    """Writes blocks (each given as its pieces, in index order) into a payload, sealing each in
    a thread pool: compression, hashing and encryption release the GIL, so blocks are sealed on
    every core while earlier ones are written. finish() writes the index and returns (stored
    length, digest)."""

    def __init__(
        self,
        sink: BinaryIO,
        header: Header,
        keyring: Keyring | None = None,
        level: int | None = None,
        limit: int | None = None,
    ) -> None:
        self._sink = sink
        self._header = header
        self._level = level
        self._limit = limit
        self._cipher = _Cipher.for_header(header, keyring)
        self._workers = max(1, min(8, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="xcomstore-block")
        self._pending: deque[Future[tuple[Pieces, list[object]]]] = deque()
        self._entries: list[list[object]] = []
        self.length = 0
        self.raw = 0  # bytes of the blocks before compression: the reference's size

    def add(self, pieces: Pieces) -> None:
        size = _nbytes(pieces)
        self.raw += size
        if self._limit is not None and self.raw > self._limit:
            raise RejectedValueError(
                f"the value grew past the size limit of {self._limit} bytes, [xcomstore] max_size "
                "(AIRFLOW__XCOMSTORE__MAX_SIZE) while being written. Nothing was stored."
            )
        number = len(self._entries) + len(self._pending)
        self._pending.append(self._pool.submit(self._seal, number, pieces, size))
        while len(self._pending) > self._workers * _IN_FLIGHT_PER_WORKER:
            self._write_next()

    def _seal(self, number: int, pieces: Pieces, size: int) -> tuple[Pieces, list[object]]:
        if self._header.compression == "none":
            plain = pieces  # hashed (and, unencrypted, written) as they are: no copy
        else:
            level = _TABLE_LEVELS.get(self._header.compression) if self._level is None else self._level
            plain = [compression.compress(self._header.compression, _joined(pieces), level)]
        digest = _digest(self._header.checksum, *plain)
        stored = [self._cipher.encrypt(number, _joined(plain))] if self._cipher else plain
        return stored, [_nbytes(plain), size, digest.hex()]

    def _write_next(self) -> None:
        stored, entry = self._pending.popleft().result()
        for piece in stored:
            self._sink.write(piece)
        self.length += _nbytes(stored)
        self._entries.append(entry)

    def finish(self, columns: Sequence[str], groups: Sequence[int], schema: bytes) -> tuple[int, bytes]:
        while self._pending:
            self._write_next()
        self._pool.shutdown()
        if len(self._entries) != len(columns) * len(groups):
            raise ValueError(f"{len(self._entries)} blocks for {len(columns)} columns × {len(groups)} groups")
        doc = {
            "columns": list(columns),
            "groups": list(groups),
            "schema": base64.b64encode(schema).decode(),
            "blocks": self._entries,
        }
        plain = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        stored = self._cipher.encrypt(INDEX_NUMBER, plain) if self._cipher else plain
        self._sink.write(stored)
        self._sink.write(_TRAILER.pack(len(stored), INDEX_MAGIC))
        self.length += len(stored) + TRAILER_SIZE
        return self.length, index_digest(self._header.checksum, plain)

    def abort(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


def write_blocked(
    sink: BinaryIO,
    header: Header,
    columns: Sequence[str],
    groups: Sequence[int],
    schema: bytes,
    raws: Iterable[Pieces],
    *,
    keyring: Keyring | None = None,
    level: int | None = None,
    limit: int | None = None,
) -> tuple[Seal, int]:
    """Write a whole blocked object (header, blocks `raws`, index, seal); its seal and the raw
    bytes of its blocks (the reference's size). `limit`: the max_size the raw bytes may reach."""
    raw = 0

    def body(out: BinaryIO) -> tuple[int, bytes]:
        nonlocal raw
        writer = BlockWriter(out, header, keyring, level, limit)
        try:
            for block in raws:
                writer.add(block)
            written = writer.finish(columns, groups, schema)
        except BaseException:
            writer.abort()
            raise
        raw = writer.raw
        return written

    return container.write_sealed(sink, header, body), raw


def reencrypt(
    sink: BinaryIO,
    index: BlockIndex,
    stored: Iterable[tuple[Block, bytes]],
    old: Header,
    new: Header,
    keyring: Keyring | None,
) -> Seal:
    """Write the object again under `new` (its new encryption), from the stored blocks of the
    object of `old`, each checked against the index on the way: the plain blocks and the index
    stay byte for byte what they were, and so does the payload digest (every reference's)."""
    before, after = _Cipher.for_header(old, keyring), _Cipher.for_header(new, keyring)

    def body(out: BinaryIO) -> tuple[int, bytes]:
        length = 0
        for block, data in stored:
            plain = before.decrypt(block.number, data) if before else data
            if _digest(old.checksum, plain) != block.digest:
                raise CorruptObjectError(
                    f"block {block.number} does not match its checksum: the object is corrupted"
                )
            written = after.encrypt(block.number, plain) if after else plain
            out.write(written)
            length += len(written)
        written = after.encrypt(INDEX_NUMBER, index.plain) if after else index.plain
        out.write(written)
        out.write(_TRAILER.pack(len(written), INDEX_MAGIC))
        return length + len(written) + TRAILER_SIZE, index_digest(new.checksum, index.plain)

    return container.write_sealed(sink, new, body)


def index_digest(algorithm: str, plain: bytes) -> bytes:
    """The payload digest of a blocked payload: its index's, domain-separated."""
    return _digest(algorithm, INDEX_DOMAIN + plain)


def _digest(algorithm: str, *pieces: Raw) -> bytes:
    hasher = checksum.new(algorithm)
    for piece in pieces:
        hasher.update(piece)
    return hasher.digest()


def _nbytes(pieces: Pieces) -> int:
    return sum(memoryview(piece).nbytes for piece in pieces)


def _joined(pieces: Pieces) -> Raw:
    """The pieces as one buffer: copied only if there are several (compressors and AES-GCM
    take one)."""
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


# -- reading -------------------------------------------------------------------------------------
def index_span(trailer: bytes, payload_length: int) -> tuple[int, int]:
    """Where the stored index lies in the payload, from the payload's last TRAILER_SIZE bytes."""
    if len(trailer) != TRAILER_SIZE or payload_length < TRAILER_SIZE:
        raise ObjectFormatError("the blocked payload is too short to hold its index")
    length, magic = _TRAILER.unpack(trailer)
    end = payload_length - TRAILER_SIZE
    if magic != INDEX_MAGIC or length > min(end, MAX_INDEX_SIZE):
        raise ObjectFormatError("the blocked payload's index trailer is damaged")
    return end - int(length), end


def open_index(stored: bytes, header: Header, keyring: Keyring | None, payload_digest: bytes) -> BlockIndex:
    """The index, decrypted, checked against the seal's payload digest, then parsed."""
    cipher = _Cipher.for_header(header, keyring)
    plain = cipher.decrypt(INDEX_NUMBER, stored) if cipher else stored
    if index_digest(header.checksum, plain) != payload_digest:
        raise CorruptObjectError(
            "the blocked payload's index does not match its checksum: the object is corrupted"
        )
    return _parse_index(plain, TAG_SIZE if cipher else 0, len(plain))


def _parse_index(plain: bytes, tag: int, size: int) -> BlockIndex:
    try:
        doc = json.loads(plain)
        columns = doc["columns"]
        groups = doc["groups"]
        entries = doc["blocks"]
        schema = base64.b64decode(doc["schema"], validate=True)
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error) as exc:
        raise ObjectFormatError(f"the blocked payload's index is malformed: {type(exc).__name__}") from None
    if not (
        isinstance(columns, list)
        and all(isinstance(c, str) for c in columns)
        and isinstance(groups, list)
        and all(_count(g) for g in groups)
        and isinstance(entries, list)
        and len(entries) == len(columns) * len(groups)
    ):
        raise ObjectFormatError("the blocked payload's index is malformed: columns, groups or blocks")
    blocks, start = [], 0
    for number, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 3 and _count(entry[0]) and _count(entry[1])):
            raise ObjectFormatError(f"the blocked payload's index is malformed at block {number}")
        digest = _hex_digest(entry[2], number)
        block = Block(number, start, entry[0] + tag, entry[0], entry[1], digest)
        blocks.append(block)
        start = block.end
    return BlockIndex(tuple(columns), tuple(groups), schema, tuple(blocks), plain)


def _count(value: object) -> bool:
    return type(value) is int and 0 <= value < (1 << 62)


def _hex_digest(text: object, number: int) -> bytes:
    try:
        digest = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        digest = b""
    if len(digest) != checksum.DIGEST_SIZE:
        raise ObjectFormatError(f"the blocked payload's index has a malformed digest at block {number}")
    return digest


def check_extent(index: BlockIndex, index_start: int) -> None:
    """The blocks must end where the index starts: nothing unaccounted for, nothing overlapping."""
    end = index.blocks[-1].end if index.blocks else 0
    if end != index_start:
        raise ObjectFormatError(
            f"the blocked payload's blocks end at {end}, its index starts at {index_start}"
        )


def open_block(stored: Raw, block: Block, header: Header, keyring: Keyring | None) -> Raw:
    """The block's raw bytes, once its stored bytes are decrypted and match the index's digest.
    The caller has charged `block.raw` to the read's budget."""
    return compression.decompress(header.compression, check_block(stored, block, header, keyring), block.raw)


def check_block(stored: Raw, block: Block, header: Header, keyring: Keyring | None) -> Raw:
    """The block's plain (compressed) bytes, decrypted and checked against the index's digest:
    all that verifying an object needs, nothing decompressed."""
    if len(stored) != block.stored:
        raise ObjectFormatError(f"block {block.number} is truncated: {len(stored)} of {block.stored} bytes")
    cipher = _Cipher.for_header(header, keyring)
    plain = cipher.decrypt(block.number, stored) if cipher else stored
    if _digest(header.checksum, plain) != block.digest:
        raise CorruptObjectError(f"block {block.number} does not match its checksum: the object is corrupted")
    return plain


def coalesce(blocks: Iterable[Block], most: int) -> list[tuple[int, int, list[Block]]]:
    """Ranges (start, end, their blocks) covering `blocks`: neighbours joined, up to `most`
    bytes a range unless one block is larger."""
    ranges: list[tuple[int, int, list[Block]]] = []
    for block in sorted(blocks, key=lambda b: b.start):
        if ranges and ranges[-1][1] == block.start and block.end - ranges[-1][0] <= most:
            start, _, members = ranges[-1]
            ranges[-1] = (start, block.end, [*members, block])
        else:
            ranges.append((block.start, block.end, [block]))
    return ranges


class _Cipher:
    """AES-256-GCM per block: nonce = the object's nonce XOR the block number (its last 8 bytes)."""

    def __init__(self, key: bytes, nonce: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self._nonce = nonce

    @classmethod
    def for_header(cls, header: Header, keyring: Keyring | None) -> _Cipher | None:
        if not header.encryption:
            return None
        return cls(*(keyring or Keyring()).key_for(header.encryption))

    def _nonce_of(self, number: int) -> bytes:
        head, tail = self._nonce[:4], int.from_bytes(self._nonce[4:], "big")
        return head + (tail ^ number).to_bytes(8, "big")

    def encrypt(self, number: int, plain: Raw) -> bytes:
        data = bytes(plain) if isinstance(plain, memoryview) else plain  # AESGCM takes no Arrow views
        return self._aead.encrypt(self._nonce_of(number), data, None)

    def decrypt(self, number: int, stored: Raw) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(self._nonce_of(number), stored, None)
        except InvalidTag:
            raise CorruptObjectError(
                f"block {number if number != INDEX_NUMBER else '(the index)'} failed authentication: "
                "a wrong key, or the object was altered"
            ) from None
