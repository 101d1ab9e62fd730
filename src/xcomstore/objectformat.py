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

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

from xcomstore import checksum, compression
from xcomstore.encryption import TAG_SIZE, DecryptingReader, EncryptingWriter, Keyring
from xcomstore.errors import CorruptObjectError, ObjectFormatError
from xcomstore.streams import HashingReader, HashingWriter

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
class Origin:
    """Which XCom a value belongs to."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str

    def __str__(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index}/{self.key}"

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "key": self.key,
        }

    @classmethod
    def from_json(cls, data: Any) -> Origin:
        if not isinstance(data, Mapping):
            raise ObjectFormatError("header origin is not an object")
        try:
            texts = [data[name] for name in ("dag_id", "run_id", "task_id", "key")]
            index = data["map_index"]
        except KeyError as exc:
            raise ObjectFormatError(f"header origin lacks {exc.args[0]!r}") from None
        if not all(isinstance(t, str) for t in texts) or type(index) is not int:
            raise ObjectFormatError("header origin has fields of the wrong type")
        return cls(texts[0], texts[1], texts[2], index, texts[3])


@dataclass(frozen=True)
class Wanted:
    """The XCom a task asked for, as far as it is known: a reference read for it must be its own."""

    dag_id: str
    task_id: str
    key: str
    run_id: str | None = None  # None: prior runs may answer (include_prior_dates)
    map_index: int | None = None  # None: any map index (a read of all of them)

    def __str__(self) -> str:
        index = "" if self.map_index is None or self.map_index < 0 else f"[{self.map_index}]"
        return f"{self.dag_id}/{self.run_id or '*'}/{self.task_id}{index}/{self.key}"


@dataclass(frozen=True)
class Header:
    """What an object says about itself. `meta` is the codec's own description of the payload."""

    codec: str
    compression: str
    type_name: str
    summary: str
    origin: Origin
    created: str
    expires: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    producer: Mapping[str, str] = field(default_factory=dict)
    encryption: Mapping[str, str] | None = None  # algorithm, key id and nonce when encrypted
    checksum: str = checksum.DEFAULT  # the seal's digest algorithm

    def to_bytes(self) -> bytes:
        doc = {
            "codec": self.codec,
            "compression": self.compression,
            "type": self.type_name,
            "summary": self.summary,
            "origin": self.origin.to_json(),
            "created": self.created,
            "expires": self.expires,
            "meta": dict(self.meta),
            "producer": dict(self.producer),
            **({"encryption": dict(self.encryption)} if self.encryption else {}),
            "checksum": self.checksum,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd nesting or numbers
            raise ObjectFormatError(f"header is not valid JSON: {type(exc).__name__}: {exc}") from None
        if not isinstance(doc, dict):
            raise ObjectFormatError("header is not a JSON object")
        return cls(
            codec=_text(doc, "codec"),
            compression=_known_compression(_text(doc, "compression")),
            type_name=_text(doc, "type"),
            summary=_text(doc, "summary"),
            origin=Origin.from_json(doc.get("origin")),
            created=_text(doc, "created"),
            expires=_optional_text(doc, "expires"),
            meta=_mapping(doc, "meta"),
            producer=_mapping(doc, "producer"),
            encryption=_mapping(doc, "encryption") or None,
            checksum=_known_checksum(doc.get("checksum", checksum.SHA256)),  # absent: version 1
        )


@dataclass(frozen=True)
class Seal:
    """What is known once the payload is written: its stored length and checksum digest."""

    length: int
    digest: bytes


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise ObjectFormatError(f"header field {name!r} is missing or not a string")
    return value


def _optional_text(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise ObjectFormatError(f"header field {name!r} is not a string")
    return value


def _mapping(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise ObjectFormatError(f"header field {name!r} is not an object")
    return value


def _known_checksum(name: object) -> str:
    if name not in checksum.NAMES:
        raise ObjectFormatError(f"header names an unknown checksum {name!r}")
    return str(name)


def _known_compression(name: str) -> str:
    if name not in compression.NAMES:
        raise ObjectFormatError(f"header names an unknown compression {name!r}")
    return name


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


def read_header(source: BinaryIO) -> Header:
    """Read and check the header from the start of `source`, leaving it at the payload."""
    return Header.from_bytes(_raw_header(source))


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
