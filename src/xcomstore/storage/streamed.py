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
# Read as the object is opened, which sends its GET: the response tells the object's size before
# the reader asks for it, and the piece holds the header it reads first. Small, so that a preview
# of a large object (its header only) takes little more than it needs.
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
    says (s3fs keeps it), which saves asking the size in a request of its own. None if the
    filesystem does not say."""
    return cast(_StreamedRaw, cast(io.BufferedReader, stream).raw).size()


class _StreamedRaw(io.RawIOBase):
    """Each call from the reading thread to fsspec's event loop is a hand-off between threads,
    and a fan-in makes thousands of them: opening the object and reading its first piece are
    one call, a whole buffer is one more, and a body read to its end needs none to tell it
    ended nor to close."""

    def __init__(self, fs: Any, path: str) -> None:
        from fsspec.asyn import sync

        self._sync = sync
        self._loop = fs.loop
        self._file, first = sync(self._loop, _open, fs, path)
        # The first piece, handed out first (a view: taking from it copies nothing).
        self._first = memoryview(first)
        self._taken = 0  # bytes handed out, to tell when the body was read to its end

    def readable(self) -> bool:
        return True

    def size(self) -> int | None:
        """The object's size, if the filesystem's file says it once its read began."""
        size = getattr(self._file, "size", None)
        return size if type(size) is int and size >= 0 else None

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        taken = min(len(self._first), len(view))
        view[:taken] = self._first[:taken]
        self._first = self._first[taken:]
        if not taken and not self._at_end():
            taken = int(self._sync(self._loop, self._fill, view))
        self._taken += taken
        return taken

    def _at_end(self) -> bool:
        """Whether the whole object has been handed out, as far as its size is known."""
        return self._taken == self.size()

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
        if self.closed:
            return
        if self._at_end():
            # Read to its end, the HTTP body has given its connection back already: all that is
            # left of closing a file being read is marking it closed (which its finaliser checks).
            self._file.closed = True
        else:
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


async def _open(fs: Any, path: str) -> tuple[Any, bytes]:
    """The filesystem's streamed file of `path` and the first piece of the object, which sends
    its GET; the file closed again if that fails (the object is missing, say)."""
    file = await fs.open_async(path, "rb")
    try:
        return file, await file.read(_FIRST_PIECE)
    except BaseException:
        with contextlib.suppress(Exception):
            await file.close()
        raise
