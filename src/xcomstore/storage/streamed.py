"""Reading a whole object through one request: a blocking file over fsspec's async streamed file.

fsspec's ordinary files read an object store one block at a time, each block a ranged request
that starts only when the previous one is consumed: a round trip per block, and servers that
load the object for every request (moto's S3) pay for the whole object each time (800 MB in
16 MB blocks: 13 s against moto, 1.1 s streamed). Filesystems that implement `open_async`
(s3fs, fsspec's HTTP) stream the object through one GET instead; xcomstore reads objects
front to back, so that is all it needs.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, BinaryIO, cast

_BUFFER = 1 << 20
_FIRST_PIECE = 64 << 10


def open_streamed(fs: Any, path: str) -> BinaryIO | None:
    """A sequential, non-seekable reader of `path`; None where `fs` cannot stream."""
    if not getattr(fs, "async_impl", False):  # local files, memory: no need to import more
        return None
    from fsspec.asyn import AsyncFileSystem

    if not isinstance(fs, AsyncFileSystem) or type(fs).open_async is AsyncFileSystem.open_async:
        return None
    try:
        raw = _StreamedRaw(fs, path)
    except (NotImplementedError, AttributeError):  # a wrapper (fsspec's dirfs) of one that can't
        return None
    return io.BufferedReader(raw, _BUFFER)


def size_of(stream: BinaryIO) -> int | None:
    """The size of the object `stream` (open_streamed's) reads, as the response to its GET
    says (s3fs keeps it): its first piece is read for it, which saves asking the size in a
    request of its own. None if the filesystem does not say."""
    return cast(_StreamedRaw, cast(io.BufferedReader, stream).raw).size()


class _StreamedRaw(io.RawIOBase):
    def __init__(self, fs: Any, path: str) -> None:
        from fsspec.asyn import sync

        self._sync = sync
        self._loop = fs.loop
        self._file = sync(self._loop, fs.open_async, path, "rb")
        # What size() read, handed out first (a view: taking from it copies nothing); None
        # until the first read of either kind.
        self._first: memoryview | None = None

    def readable(self) -> bool:
        return True

    def size(self) -> int | None:
        """The object's size, if the filesystem's file says it once the first read began (a
        first piece is read here for that, and kept: not the buffered reader's peek, which
        would copy a whole buffer out, 1 MiB of it, for every object)."""
        if self._first is None:
            self._first = memoryview(self._sync(self._loop, self._file.read, _FIRST_PIECE))
        size = getattr(self._file, "size", None)
        return size if type(size) is int and size >= 0 else None

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        kept = self._first if self._first is not None else memoryview(b"")
        taken = min(len(kept), len(view))
        view[:taken] = kept[:taken]
        self._first = kept[taken:]
        return taken or int(self._sync(self._loop, self._fill, view))

    async def _fill(self, view: memoryview) -> int:
        """Fill `view` as far as the object goes. The HTTP body hands out small pieces: each is
        copied in as it comes (no joined copy), and one call from this thread to fsspec's event
        loop brings a whole buffer. This thread waits meanwhile, so writing into its buffer
        from the loop is safe."""
        filled = 0
        while filled < len(view):
            piece = await self._file.read(len(view) - filled)
            if not piece:
                break
            view[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._sync(self._loop, self._close)
        super().close()

    async def _close(self) -> None:
        # s3fs's streamed file leaves its HTTP body open on close: a body not read to its end
        # (a preview) would hold its connection until garbage-collected.
        body = getattr(self._file, "r", None)
        if body is not None:
            body.close()
        await self._file.close()
