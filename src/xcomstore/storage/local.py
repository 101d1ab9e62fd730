"""Files below a local root that never follow a symlink, and never block on a FIFO or device.

Anyone who can write into a local store's folder (a task, another DAG's author) could plant
`<root>/some_dag -> /elsewhere`: a path-based call would then write, read or delete there. So
every path is walked from the root down, one component at a time, each opened relative to its
parent's descriptor with O_NOFOLLOW: a symlink anywhere is refused, and a folder swapped for a
symlink between a check and a use cannot redirect us (the descriptor is already open). The
root itself is the admin's choice and is resolved once, by the caller.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from xcomstore.errors import UnsafePathError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would wait for a writer forever; fstat refuses it after.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
# What open(O_NOFOLLOW) answers for a symlink: ELOOP on Linux and macOS, EMLINK on FreeBSD.
_LINK_ERRORS = {errno.ELOOP, errno.EMLINK, errno.ENOTDIR}


@dataclass(frozen=True)
class Entry:
    """One thing found in the tree: a regular file (`kind` "file") or what it is instead."""

    relpath: str
    kind: str  # file, directory, symlink, fifo, socket, device
    size: int = 0
    modified: float | None = None


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def unsafe(path: str, kind: str) -> UnsafePathError:
    what = "a symlink, which xcomstore never follows" if kind == "symlink" else f"a {kind}"
    return UnsafePathError(f"{path} is {what}, not a regular file inside the store: refused")


class LocalTree:
    """Safe operations on the files below one resolved root folder."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, relpath: str) -> str:
        return f"{self.root}/{relpath}" if relpath else self.root

    # -- folders -----------------------------------------------------------------------------
    def open_folder(self, relpath: str, *, create: bool = False) -> int:
        """A descriptor of the folder `relpath` ("" for the root); FileNotFoundError if absent."""
        if create:
            os.makedirs(self.root, exist_ok=True)
        fd = os.open(self.root, _DIRECTORY)
        done: list[str] = []
        try:
            for part in relpath.split("/") if relpath else []:
                child = self._open_child(fd, part, "/".join([*done, part]), create)
                os.close(fd)
                fd = child
                done.append(part)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_child(self, parent: int, name: str, relpath: str, create: bool) -> int:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, dir_fd=parent)
        try:
            return os.open(name, _DIRECTORY, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in _LINK_ERRORS:
                raise
            raise unsafe(self.path(relpath), self._kind(parent, name)) from None

    @contextlib.contextmanager
    def folder(self, relpath: str, *, create: bool = False) -> Iterator[int]:
        fd = self.open_folder(relpath, create=create)
        try:
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _kind(parent: int, name: str) -> str:
        try:
            return kind_of(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            return "special file"

    # -- files -------------------------------------------------------------------------------
    def open_read(self, relpath: str) -> int:
        """A descriptor of the regular file `relpath`, opened for reading, in blocking mode."""
        folder, name = _split(relpath)
        with self.folder(folder) as parent:
            try:
                fd = os.open(name, _READ, dir_fd=parent)
            except OSError as exc:
                if exc.errno not in _LINK_ERRORS:
                    raise
                raise unsafe(self.path(relpath), self._kind(parent, name)) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise unsafe(self.path(relpath), kind_of(mode))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return fd

    def create(self, parent: int, name: str) -> int:
        """A new file `name` in the folder `parent`, for writing; never an existing one."""
        return os.open(name, _CREATE, 0o666, dir_fd=parent)

    def check_target(self, parent: int, relpath: str) -> None:
        """Refuse to publish over anything but a regular file (or nothing)."""
        name = _split(relpath)[1]
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISREG(mode):
            raise unsafe(self.path(relpath), kind_of(mode))

    def lstat_file(self, relpath: str) -> os.stat_result | None:
        """The regular file's own stat, None if it is not there; a symlink or FIFO is refused."""
        folder, name = _split(relpath)
        try:
            with self.folder(folder) as parent:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise unsafe(self.path(relpath), kind_of(info.st_mode))
        return info

    def unlink(self, relpath: str) -> bool:
        """Delete the regular file `relpath`; False if it was not there."""
        folder, name = _split(relpath)
        try:
            with self.folder(folder) as parent:
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                if not stat.S_ISREG(mode):
                    raise unsafe(self.path(relpath), kind_of(mode))
                os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            return False
        return True

    # -- listing -----------------------------------------------------------------------------
    def walk(self, prefix: str, max_depth: int) -> Iterator[Entry]:
        """Everything below `prefix`, in the order of a sorted listing of full paths; folders
        deeper than `max_depth` components are reported, not entered."""
        try:
            fd = self.open_folder(prefix)
        except FileNotFoundError:
            return
        yield from self._walk(fd, prefix, max_depth)

    def _walk(self, fd: int, relpath: str, max_depth: int) -> Iterator[Entry]:
        try:
            with os.scandir(fd) as found:
                entries = [(e.name, e.stat(follow_symlinks=False)) for e in found]
            # A folder sorts as "name/": the same order as sorting every full path.
            entries.sort(key=lambda item: item[0] + ("/" if stat.S_ISDIR(item[1].st_mode) else ""))
            for name, info in entries:
                child = f"{relpath}/{name}" if relpath else name
                kind = kind_of(info.st_mode)
                if kind == "directory" and child.count("/") + 1 < max_depth:
                    yield from self._enter(fd, name, child, max_depth)
                else:
                    yield Entry(child, kind, int(info.st_size), float(info.st_mtime))
        finally:
            os.close(fd)

    def _enter(self, parent: int, name: str, relpath: str, max_depth: int) -> Iterator[Entry]:
        try:
            fd = self._open_child(parent, name, relpath, create=False)
        except UnsafePathError:  # swapped for a symlink since it was listed
            yield Entry(relpath, "symlink")
            return
        except FileNotFoundError:  # deleted since it was listed
            return
        yield from self._walk(fd, relpath, max_depth)


def _split(relpath: str) -> tuple[str, str]:
    folder, _, name = relpath.rpartition("/")
    return folder, name
