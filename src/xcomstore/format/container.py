"""The stored object format: a self-describing header, the payload, and a seal.

    offset 0      MAGIC  b"XCOMSTOR"                        8 bytes
                  format version, big-endian u16            2 bytes
                  header length N, big-endian u32           4 bytes
                  header: UTF-8 JSON object                 N bytes
                  payload (encoded, then compressed)        L bytes
    end - 80      payload length L, big-endian u64          8 bytes
                  payload digest                            32 bytes
                  object digest (version 3 only)            32 bytes
                  SEAL_MAGIC b"XCSEAL\\r\\n"                 8 bytes

The header holds everything known before the payload is written (codec, compression, origin,
creation and expiry time, library versions); the seal holds what is only known after (length
and checksum). This lets a push stream the payload straight into the store without buffering
it, and lets a reader get the header from the first bytes and the checksum from the last.

The payload digest is the header's "checksum" algorithm (BLAKE3, or sha256) over the payload's
plaintext (compressed, not encrypted) bytes. It is what a reference in the metadata DB records,
so it must not depend on the header: `rekey` writes a new header (new encryption parameters,
and version 3 for an older object) around the same plaintext, and every reference stays valid.

Version 3 authenticates the header too. The object digest is

    SHA-256(OBJECT_DOMAIN || prefix || header || L as u64 || payload digest)

so a reader that checks it, and then the payload against the payload digest, knows that
neither the header nor the payload was changed since the seal was written: rewriting a header
(its compression, codec, type, flavour, expiry...) is a CorruptObjectError. Being a digest of
the payload digest rather than a second pass over the payload, it costs nothing per byte. It
is always SHA-256 (FIPS-approved, and small input) so that a seekable object's header can be
checked before it is parsed at all: its "checksum" field is itself one of the things checked.
The domain string keeps it from ever equalling a digest computed for another purpose.

Versions 1 and 2 have a 48-byte seal without the object digest and stay readable, but their
header is not authenticated: `OpenObject.header_authenticated` and `sealed_header` say so, so
that a caller (gc trusting an `expires`) can refuse to act on it. Version 1 objects have no
"checksum" field and are sha256. Version 2 is what a reader that only knows sha256 refuses with
"upgrade xcomstore", instead of calling every new object corrupt; version 3 likewise for a
reader of version 2.

Version 4 is version 3 with the payload laid out as blocks (a table's columns, each block
compressed, encrypted and digested on its own, and an index: format/blocks.py), so that a
reader can fetch and verify only the blocks it needs. Its header says layout "blocks", and
only a version 4 header may: an object of one layout is never read as the other, and a reader
of version 3 refuses it with "upgrade xcomstore". Its payload digest is the digest of the
index, which holds each block's digest.

What the header says must still agree with the reference that led to it: `check_against`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from xcomstore.errors import CorruptObjectError, ObjectFormatError
from xcomstore.format import checksum, compression
from xcomstore.format.encryption import TAG_SIZE, DecryptingReader, EncryptingWriter, Keyring
from xcomstore.format.header import Header
from xcomstore.format.streams import Budget, HashingReader, HashingWriter

MAGIC: Final = b"XCOMSTOR"
SEAL_MAGIC: Final = b"XCSEAL\r\n"
FORMAT_VERSION: Final = 4  # the newest this reads: tables laid out as blocks (format/blocks.py)
STREAM_VERSION: Final = 3  # what objects with one payload stream are still written as
AUTHENTICATED_VERSION: Final = 3  # the first version whose seal covers the header
OBJECT_DOMAIN: Final = b"xcomstore v3 object digest\x00"
_PREFIX = struct.Struct(">8sHI")
_SEAL_V2 = struct.Struct(">Q32s8s")  # versions 1 and 2
_SEAL_V3 = struct.Struct(">Q32s32s8s")
PREFIX_SIZE: Final = _PREFIX.size
SEAL_SIZE: Final = _SEAL_V3.size  # of the objects this version writes
# A header is a few hundred bytes; the cap keeps a corrupt length from causing a huge read.
MAX_HEADER_SIZE: Final = 1 << 20
# What a decoder may raise that is not about the payload: the process is being stopped.
_INTERRUPTS: Final = (KeyboardInterrupt, SystemExit, GeneratorExit)
HEADER_MODIFIED: Final = (
    "the object's header or payload was modified: the checksum in its seal does not match"
)


@dataclass(frozen=True)
class Seal:
    """What is known once the payload is written: its stored length and payload digest, and
    (version 3) the object digest over prefix, header and both of those."""

    length: int
    digest: bytes
    object_digest: bytes | None = None


def seal_size(version: int) -> int:
    return _SEAL_V3.size if version >= AUTHENTICATED_VERSION else _SEAL_V2.size


def object_digest(head: bytes, length: int, payload_digest: bytes) -> bytes:
    """The version 3 object digest; `head` is the object's prefix and header bytes."""
    hashed = hashlib.sha256(OBJECT_DOMAIN)
    hashed.update(head)
    hashed.update(struct.pack(">Q", length))
    hashed.update(payload_digest)
    return hashed.digest()


def _pack_seal(seal: Seal) -> bytes:
    assert seal.object_digest is not None  # only version 3 objects are written
    return _SEAL_V3.pack(seal.length, seal.digest, seal.object_digest, SEAL_MAGIC)


def write_object(
    sink: BinaryIO,
    header: Header,
    encode: Callable[[BinaryIO], None],
    *,
    level: int | None = None,
    keyring: Keyring | None = None,
) -> Seal:
    """Write header, the payload `encode` produces (compressed as the header says) and the seal."""

    def fill(hashed: BinaryIO) -> None:
        stream = compression.compressing_writer(header.compression, hashed, level)
        encode(stream)
        stream.close()

    return write_payload(sink, header, fill, keyring)


def write_payload(
    sink: BinaryIO, header: Header, fill: Callable[[BinaryIO], None], keyring: Keyring | None = None
) -> Seal:
    """Write header, then the (compressed) payload bytes `fill` writes, encrypted if the header
    says so, then the seal. The payload digest covers the payload before encryption; the
    object digest covers the header as written, and the payload digest."""

    def body(out: BinaryIO) -> tuple[int, bytes]:
        encrypted = None
        if header.encryption:
            key, nonce = (keyring or Keyring()).key_for(header.encryption)
            encrypted = EncryptingWriter(out, key, nonce)
        hashed = HashingWriter(encrypted or out, header.checksum)  # type: ignore[arg-type]
        try:
            fill(hashed)  # type: ignore[arg-type]
        finally:
            hashed.close()  # stops the hashing thread, also when fill() fails
        if encrypted is not None:
            encrypted.close()
        return hashed.count + (TAG_SIZE if encrypted else 0), hashed.digest()

    return write_sealed(sink, header, body)


def write_sealed(sink: BinaryIO, header: Header, body: Callable[[BinaryIO], tuple[int, bytes]]) -> Seal:
    """Write prefix and header, the payload `body` writes (it returns the payload's stored
    length and digest), then the seal. The version follows the header's layout."""
    version = FORMAT_VERSION if header.layout == "blocks" else STREAM_VERSION
    header_bytes = header.to_bytes()
    head = _PREFIX.pack(MAGIC, version, len(header_bytes)) + header_bytes
    sink.write(head)
    length, digest = body(sink)
    seal = Seal(length, digest, object_digest(head, length, digest))
    sink.write(_pack_seal(seal))
    return seal


def parse_prefix(raw: bytes) -> int:
    """Check magic and version in the first PREFIX_SIZE bytes; return the header length."""
    return _parse_prefix(raw)[1]


def prefix_version(raw: bytes) -> int:
    """The format version in the first PREFIX_SIZE bytes (checked as parse_prefix does)."""
    return _parse_prefix(raw)[0]


def _parse_prefix(raw: bytes) -> tuple[int, int]:
    """The format version and header length, from the first PREFIX_SIZE bytes."""
    if len(raw) < PREFIX_SIZE:
        raise ObjectFormatError("object is too short to hold an xcomstore header")
    magic, version, header_length = _PREFIX.unpack(raw[:PREFIX_SIZE])
    if magic != MAGIC:
        raise ObjectFormatError("not an xcomstore object (bad magic bytes)")
    if version > FORMAT_VERSION:
        raise ObjectFormatError(
            f"object format version {version} is newer than this xcomstore reads "
            f"({FORMAT_VERSION}): upgrade xcomstore"
        )
    if version < 1 or header_length > MAX_HEADER_SIZE:
        raise ObjectFormatError(f"corrupt object prefix (version {version}, header {header_length} B)")
    return int(version), int(header_length)


def parse_seal(raw: bytes, version: int = FORMAT_VERSION) -> Seal:
    """Decode the last seal_size(version) bytes of an object."""
    if len(raw) != seal_size(version):
        raise ObjectFormatError("object is truncated: no seal at its end")
    if version >= AUTHENTICATED_VERSION:
        length, digest, sealed, magic = _SEAL_V3.unpack(raw)
    else:
        (length, digest, magic), sealed = _SEAL_V2.unpack(raw), None
    if magic != SEAL_MAGIC:
        raise ObjectFormatError("object is truncated or damaged: its seal is missing")
    return Seal(int(length), bytes(digest), sealed)


def _check_seal(seal: Seal, version: int, head: bytes, payload_length: int) -> None:
    """Refuse a seal that does not fit the object's size or (version 3) does not cover `head`."""
    if seal.length != payload_length:
        size = len(head) + payload_length + seal_size(version)
        expected = len(head) + seal.length + seal_size(version)
        raise ObjectFormatError(f"object is truncated or padded: {size} bytes, expected {expected}")
    if version >= AUTHENTICATED_VERSION and seal.object_digest != object_digest(
        head, seal.length, seal.digest
    ):
        raise CorruptObjectError(HEADER_MODIFIED)


def _read_head(source: BinaryIO) -> tuple[int, bytes]:
    """The format version, and the prefix and header bytes, read from the object's start."""
    prefix = source.read(PREFIX_SIZE)
    version, header_length = _parse_prefix(prefix)
    raw = source.read(header_length)
    if len(raw) != header_length:
        raise ObjectFormatError("object is truncated inside its header")
    return version, prefix[:PREFIX_SIZE] + raw


def parse_header(raw: bytes, version: int) -> Header:
    """The header bytes of an object of `version`, whose layout must be the version's."""
    header = Header.from_bytes(raw)
    blocked = version >= FORMAT_VERSION
    if blocked != (header.layout == "blocks") or (blocked and header.codec != "arrow"):
        # The layout decides what the payload digest covers: an object that claims the other
        # one is refused, never read the other way. Only tables are laid out as blocks.
        raise ObjectFormatError(
            f"corrupt object: format version {version} with a {header.codec} payload laid out "
            f"as {header.layout!r}"
        )
    return header


def payload_offset(header_length: int) -> int:
    return PREFIX_SIZE + header_length


def sealed_header(head: bytes, tail: bytes, size: int) -> tuple[Header, bool]:
    """The header in `head` (an object's first bytes, at least its prefix and header), checked
    against the seal at the end of `tail` (its last bytes) for an object of `size` bytes.

    True with it when the header is authenticated (version 3: the seal covers it), False for
    versions 1 and 2, whose header anyone could have rewritten: do not act on what it says
    alone (delete on its `expires`). A modified version 3 header is a CorruptObjectError.
    This checks header against seal only; the payload against the seal needs the payload read.
    """
    version, header_length = _parse_prefix(head)
    end = payload_offset(header_length)
    if len(head) < end:
        raise ObjectFormatError("object is truncated inside its header")
    if version >= AUTHENTICATED_VERSION:
        need = seal_size(version)
        if len(tail) < need or size < end + need:
            raise ObjectFormatError("object is truncated: no seal at its end")
        _check_seal(parse_seal(tail[-need:], version), version, head[:end], size - end - need)
    return parse_header(head[PREFIX_SIZE:end], version), version >= AUTHENTICATED_VERSION


def sealed_ends(head: bytes, tail: bytes, expected_checksum: str | None = None) -> tuple[Header, Seal, int]:
    """An object read by ranges: its header (from `head`, its first bytes: at least prefix and
    header) and seal (the end of `tail`, its last bytes), checked against each other and against
    the reference's checksum; and the payload's offset. Version 3 and later only: without an
    object digest, nothing ties a seal read apart to the header."""
    version, header_length = _parse_prefix(head)
    start = payload_offset(header_length)
    if len(head) < start:
        raise ObjectFormatError("object is truncated inside its header")
    if version < AUTHENTICATED_VERSION:
        raise ObjectFormatError(f"format version {version} objects are read whole")
    seal = parse_seal(tail[-seal_size(version) :], version)
    _check_seal(seal, version, head[:start], seal.length)
    header = parse_header(head[PREFIX_SIZE:start], version)
    if expected_checksum is not None and checksum.label(header.checksum, seal.digest) != expected_checksum:
        raise CorruptObjectError(
            "the object's checksum differs from the reference's: it was replaced or modified"
        )
    return header, seal, start


def check_against(header: Header, expected: Mapping[str, object]) -> None:
    """Refuse a header that disagrees with the reference that led to it (`expected`, a
    reference's JSON form or any mapping with some of its keys): CorruptObjectError naming
    the field. Compared when present: codec, compression, type, expires, and the
    checksum's algorithm (not the summary: it is for display, unsigned, and may be edited; the
    digest itself is checked against the seal by open_object's
    `expected_checksum`). The size before compression is not in the header (it is known only
    once the payload is written), nor is the stored size, which rekey changes."""
    wanted = dict(expected)
    if isinstance(wanted.get("checksum"), str):  # "blake3:<hex>": its algorithm is the header's
        wanted["checksum"] = str(wanted["checksum"]).partition(":")[0]
    for name, actual in reference_fields(header).items():
        if name in wanted and wanted[name] != actual:
            raise CorruptObjectError(
                f"the object's header differs from the reference in {name!r} "
                f"({actual!r}, the reference says {wanted[name]!r}): it was replaced or modified"
            )


def reference_fields(header: Header) -> dict[str, object]:
    """The header's fields as a reference records them (what check_against compares)."""
    # A codec that compresses natively gets compression "none", the real one is in its meta.
    native = header.meta.get("compression") if header.compression == "none" else None
    return {
        "codec": header.codec,
        "compression": native if isinstance(native, str) else header.compression,
        "type": header.type_name,
        "expires": header.expires,
        "checksum": header.checksum,
    }


@dataclass
class OpenObject:
    """A readable object: its header, and the source positioned at the payload.

    From a seekable source the seal is read up front, so a replaced object (or, version 3,
    a rewritten header) is refused before its payload is decoded; from a stream (one GET for
    the whole object) it is read after the payload. Either way nothing is returned before the
    seal has been checked.
    """

    header: Header
    source: BinaryIO
    payload_start: int
    payload_length: int
    expected_checksum: str | None = None  # "blake3:<hex>", from the reference read through
    _seal: Seal | None = None
    version: int = FORMAT_VERSION
    head: bytes = b""  # the prefix and header bytes, as read: what the object digest covers

    @property
    def seal(self) -> Seal:
        if self._seal is None:
            raise RuntimeError("a streamed object's seal is known once its payload has been read")
        return self._seal

    @property
    def header_authenticated(self) -> bool:
        """Whether the seal covering this header was checked: never for versions 1 and 2; for a
        stream, once the payload is read. Check the payload too before trusting the header."""
        return self.version >= AUTHENTICATED_VERSION and self._seal is not None

    def take_seal(self, raw: bytes) -> Seal:
        """Check the seal (`raw`, the object's last bytes) against the object and the reference."""
        seal = parse_seal(raw, self.version)
        _check_seal(seal, self.version, self.head, self.payload_length)
        return self._accept(seal)

    def _accept(self, seal: Seal) -> Seal:
        """Keep a seal that fits the object, if it also matches the reference's checksum."""
        wanted = self.expected_checksum
        if wanted is not None and checksum.label(self.header.checksum, seal.digest) != wanted:
            raise CorruptObjectError(
                "the object's checksum differs from the reference's: it was replaced or modified"
            )
        self._seal = seal
        return seal

    def read_seal(self) -> Seal:
        """The seal, read from the stream now if it was not read up front."""
        if self._seal is not None:
            return self._seal
        return self.take_seal(self.source.read(seal_size(self.version)))


def open_object(source: BinaryIO, size: int, expected_checksum: str | None = None) -> OpenObject:
    """Read the header from `source` (`size` bytes), leaving it at the payload; a seekable
    source has its seal read and checked now, before the header is even parsed."""
    version, head = _read_head(source)
    start, tail = len(head), seal_size(version)
    if size < start + tail:
        raise ObjectFormatError("object is truncated: no room for its seal")
    seal = None
    if source.seekable():
        source.seek(size - tail)
        seal = parse_seal(source.read(tail), version)
        _check_seal(seal, version, head, size - start - tail)
        source.seek(start)
    header = parse_header(head[PREFIX_SIZE:], version)
    obj = OpenObject(
        header, source, start, size - start - tail, expected_checksum, version=version, head=head
    )
    if seal is not None:
        obj._accept(seal)
    return obj


class _Plaintext:
    """The payload's plaintext (compressed) bytes, hashed as read; decrypted if need be."""

    def __init__(self, obj: OpenObject, keyring: Keyring | None) -> None:
        if obj.header.layout != "stream":
            raise ObjectFormatError("the payload is laid out as blocks: it is read block by block")
        self._obj = obj
        self._decrypting = None
        source = obj.source
        length = obj.payload_length
        if obj.header.encryption:
            key, nonce = (keyring or Keyring()).key_for(obj.header.encryption)
            length -= TAG_SIZE
            if length < 0:
                raise ObjectFormatError("encrypted payload is shorter than its tag")
            self._decrypting = DecryptingReader(source, key, nonce, length)
            source = self._decrypting  # type: ignore[assignment]
        self.hashed = HashingReader(source, length, obj.header.checksum)

    def check(self) -> None:
        """Read what is left, then compare checksum (and GCM tag) with the seal."""
        self.hashed.drain()
        if self._decrypting is not None:
            self._decrypting.finish()
        if self.hashed.digest() != self._obj.read_seal().digest:
            raise CorruptObjectError("payload checksum mismatch: the object is corrupted")


def decode_payload(
    obj: OpenObject,
    decode: Callable[[BinaryIO], Any],
    keyring: Keyring | None = None,
    budget: Budget | None = None,
) -> Any:
    """Decompress and decode the payload while hashing it; return the value only if it verifies.

    `decode` reads a stream bounded by `budget` (which it finds on it: streams.budget_of)."""
    plain = _Plaintext(obj, keyring)
    stream = compression.decompressing_reader(obj.header.compression, plain.hashed, budget)  # type: ignore[arg-type]
    try:
        value = decode(stream)
    except _INTERRUPTS:
        raise
    except BaseException as exc:
        # trust boundary: whatever a decoder raises on hostile bytes ends here. A decoder fails
        # on damaged bytes, or on a rewritten header, before the checksum is reached: the seal
        # says which it was, ahead of the decoder's own complaint. Not only Exceptions: a
        # polars PanicException (a Rust panic) is a BaseException, and must not escape as one.
        plain.check()
        if isinstance(exc, ObjectFormatError):
            raise
        raise ObjectFormatError(f"payload could not be decoded: {type(exc).__name__}: {exc}") from exc
    finally:
        plain.hashed.close()  # stops the hashing thread whatever happened
    plain.check()
    return value


def verify_payload(obj: OpenObject, keyring: Keyring | None = None) -> None:
    """Hash the whole payload and compare it with the seal, without decoding."""
    plain = _Plaintext(obj, keyring)
    try:
        plain.check()
    finally:
        plain.hashed.close()


def plaintext_stream(obj: OpenObject, keyring: Keyring | None = None) -> tuple[BinaryIO, Callable[[], None]]:
    """The payload's compressed plaintext as a stream, and the check to call once it is read."""
    plain = _Plaintext(obj, keyring)
    return plain.hashed, plain.check  # type: ignore[return-value]
