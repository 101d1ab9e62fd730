"""Arrow IPC streams from an untrusted store, read within bounds and validated before use.

Whoever can write to the bucket can write any bytes and recompute the (unkeyed) seal, so a
payload that checks out may still be hostile: a message that claims a body of a terabyte, a
compressed buffer that claims to expand to one, string offsets that point outside their data.
pyarrow allocates what a message claims and trusts offsets until asked to validate, and
converting a batch with bad offsets (to Python, CSV, Parquet) reads out of bounds: a segfault
of the whole process, the Airflow API server included.

So the stream pyarrow reads is a `CheckedStream`: it reads each message itself (the framing,
the flatbuffer metadata, the body), refuses one whose metadata, body or decompressed buffers
exceed the bounds, and only then hands its bytes on. (The codec's decoder has the same guard,
codecs.arrow_ipc.CheckedIpcStream, against one budget for the whole value; a preview or a
download has no reference to size a value by, so this one bounds each message and batch, and
what a preview reads in all. The flatbuffer is read by arrow_ipc's functions.) And `batches` validates every batch in
full (offsets, lengths, dictionary indices, UTF-8) before anyone converts a row of it.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from xcomstore.codecs import arrow_ipc
from xcomstore.errors import ObjectFormatError

_CONTINUATION = 0xFFFFFFFF


@dataclass(frozen=True)
class Bounds:
    """What one stream may cost: bytes of metadata per message, of body per message, of the
    decompressed buffers of one batch, and of everything read (None: unbounded)."""

    metadata: int = 16 << 20
    body: int = 256 << 20
    decompressed: int = 256 << 20
    total: int | None = None


class CheckedStream(io.RawIOBase):
    """A readable stream of the IPC messages of `source`, each checked against `bounds` before
    any of its bytes are passed on."""

    def __init__(self, source: BinaryIO, bounds: Bounds) -> None:
        super().__init__()
        self._source = source
        self._bounds = bounds
        self._pending = memoryview(b"")
        self._read = 0  # bytes taken from source
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending and not self._ended:
            self._pending = memoryview(self._next_message())
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _take(self, size: int, what: str) -> bytes:
        total = self._bounds.total
        if total is not None and self._read + size > total:
            raise ObjectFormatError(
                f"the Arrow stream needs more than the {total} bytes a preview reads ({what})"
            )
        parts, got = [], 0
        while got < size:
            part = self._source.read(size - got)
            if not part:
                raise ObjectFormatError(f"the Arrow stream is truncated inside a message ({what})")
            parts.append(part)
            got += len(part)
        self._read += size
        return b"".join(parts)

    def _next_message(self) -> bytes:
        """The next whole message (framing, metadata, body), once it is known to be in bounds."""
        first = self._source.read(4)
        if not first:  # a stream without its end-of-stream marker: pyarrow ends it too
            self._ended = True
            return b""
        if len(first) < 4:
            raise ObjectFormatError("the Arrow stream is truncated inside a message's framing")
        self._read += 4
        framing = first
        (length,) = struct.unpack("<I", first)
        if length == _CONTINUATION:
            framing += self._take(4, "framing")
            (length,) = struct.unpack("<i", framing[4:])
        if length == 0:
            self._ended = True
            return framing
        if length < 0 or length > self._bounds.metadata:
            raise ObjectFormatError(f"an Arrow message claims {length} bytes of metadata")
        metadata = self._take(length, "metadata")
        body_length, batch = self._check(metadata)
        body = self._take(body_length, "body")
        if batch is not None:
            self._check_body(batch, body)
        return framing + metadata + body

    def _check(self, metadata: bytes) -> tuple[int, Any]:
        """The body length `metadata` declares, once in bounds, and its batch's table if any."""
        body_length, batch = arrow_ipc.body_length(metadata)
        if body_length > self._bounds.body:
            raise ObjectFormatError(
                f"an Arrow message claims a body of {body_length} bytes (at most {self._bounds.body})"
            )
        return body_length, batch

    def _check_body(self, batch: Any, body: bytes) -> None:
        """Refuse a batch whose buffers would expand beyond the bound once decompressed (an
        uncompressed batch's buffers are slices of its body, already bounded)."""
        expanded = arrow_ipc.decompressed_size(batch, body)
        if expanded > self._bounds.decompressed:
            raise ObjectFormatError(
                f"an Arrow record batch expands to {expanded} bytes (at most {self._bounds.decompressed})"
            )


def open_stream(source: BinaryIO, bounds: Bounds) -> Any:
    """A pyarrow RecordBatchStreamReader over the checked messages of `source`."""
    import pyarrow as pa

    try:
        return pa.ipc.open_stream(pa.PythonFile(CheckedStream(source, bounds), mode="r"))
    except (pa.ArrowException, ValueError, OSError, EOFError) as exc:
        raise ObjectFormatError(f"the Arrow stream cannot be read: {type(exc).__name__}: {exc}") from exc


def batches(reader: Any, limit: int | None = None) -> Iterator[Any]:
    """The reader's record batches (the first `limit`), each validated in full before it is
    handed out: nothing converts a batch whose offsets or indices could read out of bounds."""
    import pyarrow as pa

    count = 0
    while limit is None or count < limit:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, ValueError, OSError, EOFError) as exc:
            raise ObjectFormatError(
                f"an Arrow record batch cannot be read: {type(exc).__name__}: {exc}"
            ) from exc
        validate(batch)
        count += 1
        yield batch


def validate(batch: Any) -> None:
    """Full validation of a record batch: an ObjectFormatError saying what is wrong."""
    import pyarrow as pa

    try:
        batch.validate(full=True)
    except (pa.ArrowException, ValueError) as exc:
        raise ObjectFormatError(f"an Arrow record batch is invalid: {exc}") from exc
