"""Client-side authenticated encryption of payloads: AES-256-GCM, streamed, with rotating keys.

The header names the algorithm, the key id and the nonce; the 16-byte GCM tag follows the
ciphertext. The seal's checksum covers the plaintext (compressed) payload, so re-encrypting an
object under a new key (`xcomstore rekey`) keeps the references in the metadata DB valid.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from xcomstore.errors import ConfigError, CorruptObjectError, MissingKeyError, ObjectFormatError

ALGORITHM: Final = "AES-256-GCM"
TAG_SIZE: Final = 16
_NONCE_SIZE: Final = 12


@dataclass(frozen=True)
class Keyring:
    """Encryption keys by id; the first one encrypts new objects, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def parse(cls, text: str, setting: str = "[xcomstore] encryption_keys") -> Keyring:
        """Keys from 'id1:<base64 of 32 bytes>, id2:…'."""
        keys = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            key_id, _, encoded = part.partition(":")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not key_id.strip() or len(key) != 32:
                raise ConfigError(
                    f"{setting}: each key must be '<key_id>:<base64 of 32 random bytes>' "
                    '(make one with: python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())")'
                )
            keys.append((key_id.strip(), key))
        if len({k for k, _ in keys}) != len(keys):
            raise ConfigError(f"{setting}: a key id appears twice")
        return cls(tuple(keys))

    def __bool__(self) -> bool:
        return bool(self.keys)

    @property
    def active_id(self) -> str:
        return self.keys[0][0]

    def new_params(self) -> dict[str, str]:
        """What a new object's header records: algorithm, key id and a fresh random nonce."""
        return {"alg": ALGORITHM, "key_id": self.active_id, "nonce": os.urandom(_NONCE_SIZE).hex()}

    def key_for(self, params: Mapping[str, Any]) -> tuple[bytes, bytes]:
        """The key and nonce an object's header asks for."""
        if params.get("alg") != ALGORITHM:
            raise ObjectFormatError(
                f"object is encrypted with {params.get('alg')!r}, which xcomstore does not know"
            )
        key = dict(self.keys).get(str(params.get("key_id")))
        if key is None:
            raise MissingKeyError(
                f"object is encrypted with key {params.get('key_id')!r}, which is not configured in "
                "[xcomstore] encryption_keys"
            )
        try:
            nonce = bytes.fromhex(str(params.get("nonce")))
        except ValueError:
            nonce = b""
        if len(nonce) != _NONCE_SIZE:
            raise ObjectFormatError("object header has a malformed encryption nonce")
        return key, nonce


class EncryptingWriter(io.RawIOBase):
    """Encrypts everything written into `sink`; close() appends the GCM tag (sink stays open)."""

    def __init__(self, sink: BinaryIO, key: bytes, nonce: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._sink = sink
        self._encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._sink.write(self._encryptor.update(bytes(data)))
        return memoryview(data).nbytes

    def close(self) -> None:
        if not self.closed:
            self._sink.write(self._encryptor.finalize())
            self._sink.write(self._encryptor.tag)
        super().close()


class DecryptingReader(io.RawIOBase):
    """Decrypts `length` bytes of ciphertext from `source`; finish() checks the tag after them."""

    def __init__(self, source: BinaryIO, key: bytes, nonce: bytes, length: int) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._source = source
        self._decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).decryptor()
        self._remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._remaining)
        if want == 0:
            return 0
        chunk = self._source.read(want)
        if not chunk:
            raise ObjectFormatError("object is truncated inside its encrypted payload")
        plain = self._decryptor.update(chunk)
        memoryview(buffer).cast("B")[: len(plain)] = plain
        self._remaining -= len(chunk)
        return len(plain)

    def finish(self) -> None:
        """Authenticate: every byte must have been read; the tag must match."""
        from cryptography.exceptions import InvalidTag

        tag = self._source.read(TAG_SIZE)
        try:
            self._decryptor.finalize_with_tag(tag)
        except (InvalidTag, ValueError):
            raise CorruptObjectError(
                "the encrypted payload failed authentication: a wrong key, or the object was altered"
            ) from None
