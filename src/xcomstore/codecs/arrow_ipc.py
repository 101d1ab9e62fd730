"""An Arrow IPC stream checked message by message before pyarrow decodes it.

trust boundary: an uncompressed IPC stream is bounded by the bounded byte stream it is read
from, since pyarrow's buffers are slices of the bytes read. With IPC buffer compression
(zstd, lz4) they are not: each compressed buffer starts with an 8-byte uncompressed length,
and pyarrow allocates that much to decompress it: a 33 KB batch can claim 1 GiB. So this stream
stands between the payload and pyarrow's stream reader: it reads each message whole (its
metadata, then its body), finds the batch's buffers in the metadata, sums the lengths they
claim and reserves them from the Budget; only then does pyarrow see the message. A batch that
claims more than the budget has left is refused before pyarrow allocates anything.

Dictionary batches carry a record batch too and are checked the same way. The stream is
handed to pyarrow.ipc.open_stream, so dictionaries, schema and the end-of-stream marker are
read by pyarrow as before.

The message metadata is a flatbuffer (Arrow's format/Message.fbs). `_Table` reads the few
fields needed, checking every offset against the buffer:

    table Message { version: short; header: MessageHeader (union: type ubyte, value table);
                    bodyLength: long; custom_metadata: [KeyValue] }
    union MessageHeader { Schema = 1, DictionaryBatch = 2, RecordBatch = 3, ... }
    table RecordBatch { length: long; nodes: [FieldNode]; buffers: [Buffer];
                        compression: BodyCompression; ... }
    struct Buffer { offset: long; length: long }   // 16 bytes, in the body
    table DictionaryBatch { id: long; data: RecordBatch; isDelta: bool }

A flatbuffer table starts with an int32 back to its vtable; the vtable holds its own length
(u16), the table's length (u16), then one u16 offset per field (0: absent, the default).
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO

from xcomstore.errors import ObjectFormatError
from xcomstore.format.streams import Budget

_CONTINUATION = -1
_DICTIONARY_BATCH, _RECORD_BATCH = 2, 3
_UNCOMPRESSED = -1  # a compressed batch's buffer prefix: "stored as is, not compressed"
_CHUNK = 8 << 20
_BUFFER = struct.Struct("<qq")
DECOMPRESSED = "decompressed Arrow buffers"


def _unpack(fmt: str, buf: bytes, at: int) -> int:
    """One little-endian scalar at `at`; anything outside `buf` is a malformed message."""
    if at < 0 or at + struct.calcsize(fmt) > len(buf):
        raise ObjectFormatError("malformed Arrow message metadata: an offset points outside it")
    return int(struct.unpack_from(fmt, buf, at)[0])


class _Table:
    """A flatbuffer table at `pos` of `buf`: the fields the checks need, bounds-checked."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.vtable = pos - _unpack("<i", buf, pos)
        self.vtable_length = _unpack("<H", buf, self.vtable)

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot + 2 > self.vtable_length:
            return None
        offset = _unpack("<H", self.buf, self.vtable + slot)
        return self.pos + offset if offset else None

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return default if at is None else _unpack(fmt, self.buf, at)

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return None if at is None else _Table(self.buf, at + _unpack("<I", self.buf, at))

    def structs(self, index: int, size: int) -> list[int]:
        """Where each struct of a vector of `size`-byte structs starts."""
        at = self._field(index)
        if at is None:
            return []
        vector = at + _unpack("<I", self.buf, at)
        count = _unpack("<I", self.buf, vector)
        if vector + 4 + count * size > len(self.buf):
            raise ObjectFormatError("malformed Arrow message metadata: a vector runs past its end")
        return [vector + 4 + i * size for i in range(count)]


def body_length(metadata: bytes) -> tuple[int, _Table | None]:
    """A message's body length and, for a record or dictionary batch, its RecordBatch table."""
    message = _Table(metadata, _unpack("<I", metadata, 0))
    length = message.scalar(3, "<q")
    if length < 0:
        raise ObjectFormatError(f"malformed Arrow message: body length {length}")
    kind, header = message.scalar(1, "<B"), message.table(2)
    if header is not None and kind == _DICTIONARY_BATCH:
        return length, header.table(1)
    return length, header if kind == _RECORD_BATCH else None


def decompressed_size(batch: _Table, body: bytes) -> int:
    """What pyarrow allocates to decompress the batch's buffers (0 for an uncompressed batch,
    whose buffers are slices of `body`)."""
    if batch.table(3) is None:  # no BodyCompression: the body is the buffers
        return 0
    total = 0
    for at in batch.structs(2, _BUFFER.size):
        offset, length = _BUFFER.unpack_from(batch.buf, at)
        if length == 0:
            continue
        if offset < 0 or length < 8 or offset + length > len(body):
            raise ObjectFormatError(
                f"malformed Arrow batch: a compressed buffer at {offset} of {length} B in a body of {len(body)} B"
            )
        claimed = _unpack("<q", body, offset)
        if claimed < _UNCOMPRESSED:
            raise ObjectFormatError(f"malformed Arrow batch: a buffer claims {claimed} B uncompressed")
        total += length - 8 if claimed == _UNCOMPRESSED else claimed
    return total


class CheckedIpcStream(io.RawIOBase):
    """The IPC stream of `source`, each message checked against `budget` before pyarrow reads it."""

    def __init__(self, source: BinaryIO, budget: Budget) -> None:
        self._source = source
        self._budget = budget
        self._pending: list[bytes] = []  # checked bytes pyarrow has not read yet
        self._start = 0  # how much of _pending[0] it has read
        self._ended = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = (1 << 62) if size is None or size < 0 else size
        parts: list[bytes] = []
        while want > 0 and (self._pending or self._next_message()):
            head = self._pending[0]
            if self._start == 0 and len(head) <= want:
                parts.append(self._pending.pop(0))  # whole: pyarrow reads a body this way, no copy
            else:
                parts.append(head[self._start : self._start + want])
                self._start += len(parts[-1])
                if self._start == len(head):
                    self._pending.pop(0)
                    self._start = 0
            want -= len(parts[-1])
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def _exact(self, size: int) -> bytes:
        """`size` bytes of the source, or fewer at its end (pyarrow then reports the truncation)."""
        parts = []
        while size > 0:
            chunk = self._source.read(min(size, _CHUNK))
            if not chunk:
                break
            parts.append(chunk)
            size -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _next_message(self) -> bool:
        """Read, check and queue the next message; False at the end of the source."""
        if self._ended:
            return False
        prefix = self._exact(4)
        length = struct.unpack("<i", prefix)[0] if len(prefix) == 4 else 0
        if length == _CONTINUATION:
            more = self._exact(4)
            prefix += more
            length = struct.unpack("<i", more)[0] if len(more) == 4 else 0
        if length <= 0:  # end of the source, the end-of-stream marker, or what pyarrow refuses
            return self._end(prefix)
        metadata = self._exact(length)
        if len(metadata) < length:
            return self._end(prefix, metadata)
        size, batch = body_length(metadata)
        body = self._exact(size)
        if batch is not None and len(body) == size:
            self._budget.reserve(decompressed_size(batch, body), DECOMPRESSED)
        self._pending.extend(chunk for chunk in (prefix, metadata, body) if chunk)
        return True

    def _end(self, *chunks: bytes) -> bool:
        """Hand pyarrow the last bytes as they are: it says what is wrong with them, if anything."""
        self._ended = True
        self._pending.extend(chunk for chunk in chunks if chunk)
        return bool(self._pending)
