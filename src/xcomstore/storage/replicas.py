"""A replica set: the configured locations, written together and read in order.

A push encodes its value once and tees the bytes into every location; it succeeds once
`required` copies are committed, and a copy that failed is left for `xcomstore repair`. A read
tries the copies in the order of the configuration and takes the first one that checks out.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from typing import BinaryIO, TypeVar

from xcomstore.errors import (
    ObjectFormatError,
    ObjectNotFoundError,
    StoreAccessError,
    StoreUnavailableError,
    XComStoreError,
)
from xcomstore.storage.location import Location, PendingWrite
from xcomstore.storage.retry import is_store_error, is_transient

log = logging.getLogger("xcomstore")
T = TypeVar("T")
# A copy that fails with one of these is skipped in favour of the next location's copy. A
# configuration error (a missing encryption key) is not among them: every copy would fail alike.
FAIL_OVER = (ObjectNotFoundError, ObjectFormatError, StoreUnavailableError)


class ReplicaSet:
    """The locations every object is written to; `required` copies make a write succeed."""

    def __init__(self, locations: Sequence[Location], required: int = 0) -> None:
        self.locations = tuple(locations)
        self.required = required or len(self.locations)  # 0: all of them

    def begin_write(self, relpath: str, on_missing_copy: Callable[[str], None]) -> ReplicaWrite:
        """Open the object for writing in every location that can take it."""
        pending: list[PendingWrite] = []
        errors: list[BaseException] = []
        failed: list[str] = []
        for location in self.locations:
            try:
                pending.append(location.begin_write(relpath))
            except Exception as exc:
                if not is_store_error(exc):
                    raise
                errors.append(exc)
                failed.append(f"{location.url}: {type(exc).__name__}: {exc}")
        if len(pending) < self.required:
            for write in pending:
                write.abort()
            raise _too_few("cannot open enough copies for writing", errors, failed)
        return ReplicaWrite(pending, self.required, failed, on_missing_copy)

    def read_first(
        self,
        targets: Sequence[tuple[Location, str]],
        read: Callable[[Location, str], T],
        on_fail_over: Callable[[str, XComStoreError], None],
    ) -> T:
        """`read` of the first copy that succeeds, each copy retried by its location's policy."""
        errors: list[tuple[str, XComStoreError]] = []
        for location, relpath in targets:
            uri = location.uri(relpath)
            try:
                return location.retry.run(f"read {uri}", lambda: read(location, relpath))  # noqa: B023
            except FAIL_OVER as exc:
                errors.append((uri, exc))
                if len(targets) > 1:
                    on_fail_over(uri, exc)
        if len(errors) == 1:
            raise errors[0][1]
        summary = "; ".join(f"{uri}: {exc}" for uri, exc in errors)
        raise type(errors[0][1])(f"no copy could be read: {summary}")


class ReplicaWrite:
    """One object being written to several locations: a single stream, then commit or abort."""

    def __init__(
        self,
        pending: list[PendingWrite],
        required: int,
        failed: list[str],
        on_missing_copy: Callable[[str], None],
    ) -> None:
        self._pending = pending
        self._required = required
        self._failed = failed
        self._errors: list[BaseException] = []  # of the commits: the opens' are in `failed`
        self._on_missing_copy = on_missing_copy
        self._tee = TeeWriter([p.stream for p in pending], required) if len(pending) > 1 else None
        self.stream: BinaryIO = self._tee if self._tee is not None else pending[0].stream  # type: ignore[assignment]

    def abort(self) -> None:
        for write in self._pending:
            write.abort()

    def commit(self) -> tuple[str, ...]:
        """Publish every copy that was written whole; the URIs of the copies that now exist."""
        dropped = set(self._tee.failures) if self._tee is not None else set()
        done: list[PendingWrite] = []
        for index, write in enumerate(self._pending):
            if index in dropped:
                write.abort()
                self._failed.append(f"{write.location.url}: write failed")
                continue
            try:
                write.commit()
                done.append(write)
            except Exception as exc:
                if not is_store_error(exc):
                    raise
                self._errors.append(exc)
                self._failed.append(f"{write.location.url}: {type(exc).__name__}: {exc}")
        if len(done) < self._required:
            for write in done:  # not enough copies: don't leave some behind without a reference
                write.location.delete(write.relpath)
            raise _too_few("too few copies written", self._errors, self._failed)
        for reason in self._failed:
            log.warning("xcomstore: a copy was not written (restore it with `xcomstore repair`): %s", reason)
            self._on_missing_copy(reason)
        return tuple(w.location.uri(w.relpath) for w in done)


def _too_few(what: str, errors: Sequence[BaseException], reasons: Sequence[str]) -> Exception:
    """The error for too few copies: retryable (a plain OSError) unless every copy was refused,
    which trying again cannot change."""
    message = f"{what}: " + "; ".join(reasons)
    refused = bool(errors) and not any(is_transient(exc) for exc in errors)
    error = StoreAccessError(message) if refused else OSError(message)
    error.__cause__ = errors[0] if errors else None
    return error


class TeeWriter(io.RawIOBase):
    """Writes every chunk to each sink; a sink that fails is dropped while `required` remain.

    This is how one encoding pass fills several locations at once.
    """

    def __init__(self, sinks: list[BinaryIO], required: int) -> None:
        self._sinks = sinks
        self._required = required
        self.failures: dict[int, BaseException] = {}

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        for index, sink in enumerate(self._sinks):
            if index in self.failures:
                continue
            try:
                sink.write(data)
            except Exception as exc:
                if not is_store_error(exc):
                    raise
                self.failures[index] = exc
        if len(self._sinks) - len(self.failures) < self._required:
            reasons = "; ".join(f"{type(e).__name__}: {e}" for e in self.failures.values())
            raise OSError(f"too few copies left to write ({reasons})")
        return memoryview(data).nbytes
