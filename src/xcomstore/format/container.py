"""The stored object format: a self-describing header, the payload, and a seal.

    offset 0      MAGIC  b"XCOMSTOR"                        8 bytes
                  format version, big-endian u16            2 bytes
                  header length N, big-endian u32           4 bytes
                  header: UTF-8 JSON object                 N bytes
                  payload (encoded, then compressed)        L bytes
    end - 48      payload length L, big-endian u64          8 bytes
                  checksum of the payload                   32 bytes
                  SEAL_MAGIC b"XCSEAL\\r\\n"                 8 bytes

The header holds everything known before the payload is written (codec, compression, origin,
creation and expiry time, library versions); the seal holds what is only known after (length
and checksum). This lets a push stream the payload straight into the store without buffering
it, and lets a reader get the header from the first bytes and the checksum from the last.

The header's "checksum" names the algorithm (BLAKE3, or sha256). Version 1 objects have no such
field and are sha256: they stay readable. Version 2 is what a reader that only knows sha256
refuses with "upgrade xcomstore", instead of calling every new object corrupt.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from xcomstore.errors import CorruptObjectError, ObjectFormatError
from xcomstore.format import checksum, compression
from xcomstore.format.encryption import TAG_SIZE, DecryptingReader, EncryptingWriter, Keyring
from xcomstore.format.header import Header
from xcomstore.format.streams import HashingReader, HashingWriter

MAGIC: Final = b"XCOMSTOR"
SEAL_MAGIC: Final = b"XCSEAL\r\n"
FORMAT_VERSION: Final = 2
_PREFIX = struct.Struct(">8sHI")
_SEAL = struct.Struct(">Q32s8s")
PREFIX_SIZE: Final = _PREFIX.size
SEAL_SIZE: Final = _SEAL.size
# A header is a few hundred bytes; the cap keeps a corrupt length from causing a huge read.
MAX_HEADER_SIZE: Final = 1 << 20


@dataclass(frozen=True)
class Seal:
    """What is known once the payload is written: its stored length and checksum digest."""

    length: int
    digest: bytes


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
    says so, then the seal. The checksum covers the payload before encryption."""
    header_bytes = header.to_bytes()
    sink.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes)))
    sink.write(header_bytes)
    encrypted = None
    if header.encryption:
        key, nonce = (keyring or Keyring()).key_for(header.encryption)
        encrypted = EncryptingWriter(sink, key, nonce)
    hashed = HashingWriter(encrypted or sink, header.checksum)  # type: ignore[arg-type]
    try:
        fill(hashed)  # type: ignore[arg-type]
    finally:
        hashed.close()  # stops the hashing thread, also when fill() fails
    if encrypted is not None:
        encrypted.close()
    seal = Seal(hashed.count + (TAG_SIZE if encrypted else 0), hashed.digest())
    sink.write(_SEAL.pack(seal.length, seal.digest, SEAL_MAGIC))
    return seal


def parse_prefix(raw: bytes) -> int:
    """Check magic and version in the first PREFIX_SIZE bytes; return the header length."""
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
    return int(header_length)


def parse_seal(raw: bytes) -> Seal:
    """Decode the last SEAL_SIZE bytes of an object."""
    if len(raw) != SEAL_SIZE:
        raise ObjectFormatError("object is truncated: no seal at its end")
    length, digest, magic = _SEAL.unpack(raw)
    if magic != SEAL_MAGIC:
        raise ObjectFormatError("object is truncated or damaged: its seal is missing")
    return Seal(int(length), bytes(digest))


def _raw_header(source: BinaryIO) -> bytes:
    header_length = parse_prefix(source.read(PREFIX_SIZE))
    raw = source.read(header_length)
    if len(raw) != header_length:
        raise ObjectFormatError("object is truncated inside its header")
    return raw


def payload_offset(header_length: int) -> int:
    return PREFIX_SIZE + header_length


@dataclass
class OpenObject:
    """A readable object: its header, and the source positioned at the payload.

    From a seekable source the seal is read up front, so a replaced object is refused before
    its payload is decoded; from a stream (one GET for the whole object) it is read after
    the payload. Either way nothing is returned before the seal has been checked.
    """

    header: Header
    source: BinaryIO
    payload_start: int
    payload_length: int
    expected_checksum: str | None = None  # "blake3:<hex>", from the reference read through
    _seal: Seal | None = None

    @property
    def seal(self) -> Seal:
        if self._seal is None:
            raise RuntimeError("a streamed object's seal is known once its payload has been read")
        return self._seal

    def take_seal(self, raw: bytes) -> Seal:
        """Check the seal (`raw`, the object's last bytes) against the object and the reference."""
        seal = parse_seal(raw)
        if seal.length != self.payload_length:
            size = self.payload_start + self.payload_length + SEAL_SIZE
            expected = self.payload_start + seal.length + SEAL_SIZE
            raise ObjectFormatError(f"object is truncated or padded: {size} bytes, expected {expected}")
        wanted = self.expected_checksum
        if wanted is not None and checksum.label(self.header.checksum, seal.digest) != wanted:
            raise CorruptObjectError(
                "the object's checksum differs from the reference's: it was replaced or modified"
            )
        self._seal = seal
        return seal

    def read_seal(self) -> Seal:
        """The seal, read from the stream now if it was not read up front."""
        return self._seal if self._seal is not None else self.take_seal(self.source.read(SEAL_SIZE))


def open_object(source: BinaryIO, size: int, expected_checksum: str | None = None) -> OpenObject:
    """Read the header from `source` (`size` bytes), leaving it at the payload; a seekable
    source has its seal read and checked now."""
    raw = _raw_header(source)
    header = Header.from_bytes(raw)
    start = payload_offset(len(raw))
    if size < start + SEAL_SIZE:
        raise ObjectFormatError("object is truncated: no room for its seal")
    obj = OpenObject(header, source, start, size - start - SEAL_SIZE, expected_checksum)
    if source.seekable():
        source.seek(size - SEAL_SIZE)
        obj.take_seal(source.read(SEAL_SIZE))
        source.seek(start)
    return obj


class _Plaintext:
    """The payload's plaintext (compressed) bytes, hashed as read; decrypted if need be."""

    def __init__(self, obj: OpenObject, keyring: Keyring | None) -> None:
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


def decode_payload(obj: OpenObject, decode: Callable[[BinaryIO], Any], keyring: Keyring | None = None) -> Any:
    """Decompress and decode the payload while hashing it; return the value only if it verifies."""
    plain = _Plaintext(obj, keyring)
    stream = compression.decompressing_reader(obj.header.compression, plain.hashed)  # type: ignore[arg-type]
    try:
        value = decode(stream)
    except ObjectFormatError:
        raise
    except Exception as exc:
        # A decoder fails on damaged bytes before the checksum is reached: say which it was.
        plain.check()
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
