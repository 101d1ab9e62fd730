"""store: what is specific to one implementation rather than to a kind of store: RetryPolicy,
URLs handed to fsspec (connection ids removed), and how a Location keeps its configured URL.

The behaviour every store kind must have is tests/contracts/store_contract.py (StoreContract),
run on each kind by tests/unit/test_store_file.py, tests/unit/test_store_memory.py and
tests/lifecycle/test_store_servers.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from xcomstore.errors import ForgedReferenceError, ObjectNotFoundError, StoreUnavailableError, XComStoreError
from xcomstore.storage.location import Location, fsspec_filesystem, without_connection
from xcomstore.storage.retry import RetryPolicy


# -- RetryPolicy on its own ------------------------------------------------------------------
def failing(*errors: BaseException, result: str = "done") -> tuple[Callable[[], str], list[int]]:
    """An operation that raises `errors` one per call, then returns `result`; and its call count."""
    calls = [0]
    queue = iter(errors)

    def operation() -> str:
        calls[0] += 1
        error = next(queue, None)
        if error is not None:
            raise error
        return result

    return operation, calls


def test_retry_flaky_operation_succeeds(fast_retry: RetryPolicy) -> None:
    operation, calls = failing(OSError("one"), OSError("two"))
    assert fast_retry.run("op", operation) == "done"
    assert calls == [3]


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError("gone"), PermissionError("no"), IsADirectoryError("dir"), ObjectNotFoundError("gone")],
    ids=lambda e: type(e).__name__,
)
def test_retry_permanent_errors_raised_at_once(fast_retry: RetryPolicy, error: OSError) -> None:
    operation, calls = failing(error)
    with pytest.raises(type(error)):
        fast_retry.run("op", operation)
    assert calls == [1]


@pytest.mark.parametrize("error", [ValueError("bad"), KeyError("k"), ForgedReferenceError("forged")])
def test_retry_other_errors_not_retried(fast_retry: RetryPolicy, error: Exception) -> None:
    operation, calls = failing(error)
    with pytest.raises(type(error)):
        fast_retry.run("op", operation)
    assert calls == [1]


@pytest.mark.parametrize("retries", [0, 1, 4])
def test_retry_budget(retries: int) -> None:
    policy = RetryPolicy(retries=retries, timeout=10.0, first_wait=0.0001)
    operation, calls = failing(*itertools.repeat(OSError("down"), 10))
    with pytest.raises(StoreUnavailableError, match=f"read x failed after {retries + 1} attempts") as info:
        policy.run("read x", operation)
    assert calls == [retries + 1]
    assert isinstance(info.value.__cause__, OSError)
    assert isinstance(info.value, XComStoreError)
    assert isinstance(info.value, OSError)


def test_retry_stops_at_timeout() -> None:
    policy = RetryPolicy(retries=100, timeout=0.0, first_wait=1.0)
    operation, calls = failing(*itertools.repeat(OSError("down"), 10))
    with pytest.raises(StoreUnavailableError, match="after 1 attempts"):
        policy.run("op", operation)
    assert calls == [1]


def test_retry_waits_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("xcomstore.storage.retry.time.sleep", waits.append)
    policy = RetryPolicy(retries=3, timeout=1000.0, first_wait=1.0)
    operation, _ = failing(*itertools.repeat(OSError("down"), 3))
    assert policy.run("op", operation) == "done"
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        assert 0.5 * 2**attempt <= wait <= 1.5 * 2**attempt


# -- URLs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("s3://aws_default@bucket/xcom", "s3://bucket/xcom"),
        ("s3://bucket/xcom", "s3://bucket/xcom"),
        ("gs://@bucket/x", "gs://bucket/x"),
        ("file:///var/lib/xcom", "file:///var/lib/xcom"),
        ("abfs://conn@container/x", "abfs://container/x"),
    ],
)
def test_without_connection(url: str, plain: str) -> None:
    assert without_connection(url) == plain


def test_location_keeps_the_configured_url(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store/"
    fs, root = fsspec_filesystem(url)
    location = Location(url, fs, root)
    assert location.url == f"file://{tmp_path}/store"
    assert location.uri("a/b.xcs") == f"file://{tmp_path}/store/a/b.xcs"
    assert repr(location) == f"Location('file://{tmp_path}/store')"
