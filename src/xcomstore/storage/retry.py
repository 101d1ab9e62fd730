"""Which store errors are worth retrying, and the policy that retries them.

A store is reached over a network: connections drop, servers answer 503. A transient error is
retried with exponential backoff and jitter, within a count and a time limit; an error that
retrying cannot fix (a missing object, a refusal) is raised at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from xcomstore.errors import StoreUnavailableError, XComStoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that retrying cannot fix: the object is not there, or we may not touch it.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
# Client libraries of object stores raise their own exceptions for network trouble
# (botocore's EndpointConnectionError is no OSError): these count as store errors too.
_STORE_LIBRARIES = (
    "botocore",
    "aiobotocore",
    "aiohttp",
    "urllib3",
    "requests",
    "google",
    "azure",
    "gcsfs",
    "s3fs",
    "adlfs",
)


def is_store_error(exc: BaseException) -> bool:
    """Whether `exc` comes from talking to a store: a copy there failed, others may not."""
    if isinstance(exc, OSError):
        return True
    return any(type(exc).__module__.startswith(lib) for lib in _STORE_LIBRARIES)


def is_transient(exc: BaseException) -> bool:
    """A store error that may pass if tried again (not a missing object, a refusal, or an
    xcomstore error: those are final, already retried where retrying could help)."""
    return is_store_error(exc) and not isinstance(exc, (*_PERMANENT, XComStoreError))


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    timeout: float = 120.0
    first_wait: float = 0.2

    def run(self, what: str, operation: Callable[[], T]) -> T:
        """Run `operation`, retrying transient errors with exponential backoff and jitter."""
        deadline = time.monotonic() + self.timeout
        for attempt in range(self.retries + 1):
            try:
                return operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                wait = self.first_wait * 2**attempt * (0.5 + random.random())
                if attempt == self.retries or time.monotonic() + wait > deadline:
                    raise StoreUnavailableError(
                        f"{what} failed after {attempt + 1} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                log.warning("%s failed (%s), retry %d in %.1fs", what, exc, attempt + 1, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")
