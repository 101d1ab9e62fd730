"""store: one conformance suite (StoreContract) run on every kind of store, plus RetryPolicy.

To run the suite on another store, subclass StoreContract and provide a `location` fixture
that yields an empty Location on that store (see TestFileStore and TestMemoryStore).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from xcomstore.errors import ForgedReferenceError, ObjectNotFoundError, StoreUnavailableError, XComStoreError
from xcomstore.storage.location import Location, ObjectInfo, fsspec_filesystem, without_connection
from xcomstore.storage.retry import RetryPolicy

OBJECT = "dag/run/task/-1/return_value.xcs"
DATA = bytes(range(256)) * 64  # 16 KiB


def put(location: Location, relpath: str, data: bytes) -> None:
    with location.writer(relpath) as sink:
        sink.write(data)


def get(location: Location, relpath: str) -> tuple[bytes, int]:
    with location.reader(relpath) as (source, size):
        return source.read(), size


def write_then_fail(
    location: Location,
    relpath: str,
    data: bytes,
    error: BaseException,
    during: Callable[[], None] = lambda: None,
) -> None:
    """Start writing an object, then fail inside the writer block (after calling `during`)."""
    with location.writer(relpath) as sink:
        sink.write(data)
        sink.flush()
        during()
        raise error


def every_file(location: Location) -> list[str]:
    """Every file below the location's root, hidden ones included, relative to the root."""
    try:
        found = location.fs.find(location.root)
    except FileNotFoundError:
        return []
    root = location.fs._strip_protocol(location.root).rstrip("/") + "/"
    return sorted(location.fs._strip_protocol(p).removeprefix(root) for p in found)


class Flaky:
    """Wraps an fsspec filesystem: the named methods raise the queued errors before working."""

    def __init__(self, fs: Any, **errors: list[BaseException]) -> None:
        self._fs = fs
        self._errors = errors
        self.calls: dict[str, int] = dict.fromkeys(errors, 0)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._fs, name)
        if name not in self._errors:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if self._errors[name]:
                raise self._errors[name].pop(0)
            return attribute(*args, **kwargs)

        return call


class Boom(Exception):
    pass


class StoreContract:
    """The behaviour every store kind must have. Subclasses provide the `location` fixture.

    A reader reads front to back; whether it can seek depends on the store (object stores
    stream the object through one request)."""

    @pytest.fixture
    def location(self) -> Location:
        raise NotImplementedError("a StoreContract subclass provides an empty Location")

    @pytest.fixture
    def flaky_location(
        self, location: Location, fast_retry: RetryPolicy
    ) -> Callable[..., tuple[Location, Flaky]]:
        """The same store behind a filesystem whose named methods fail first."""

        def make(**errors: list[BaseException]) -> tuple[Location, Flaky]:
            flaky = Flaky(location.fs, **errors)
            return Location(location.url, flaky, location.root, fast_retry), flaky

        return make

    # -- write and read --------------------------------------------------------------------
    @pytest.mark.parametrize("data", [b"", b"x", DATA], ids=["empty", "one-byte", "16KiB"])
    def test_write_then_read(self, location: Location, data: bytes) -> None:
        assert not location.exists(OBJECT)
        put(location, OBJECT, data)
        assert location.exists(OBJECT)
        assert get(location, OBJECT) == (data, len(data))

    def test_large_object_in_small_writes(self, location: Location) -> None:
        chunk = bytes(range(256)) * 256  # 64 KiB
        with location.writer(OBJECT) as sink:
            for _ in range(100):
                sink.write(chunk)
        with location.reader(OBJECT) as (source, size):
            assert size == 100 * len(chunk)
            assert source.read(len(chunk)) == chunk
            rest = b"".join(iter(lambda: source.read(50_000), b""))  # short reads, front to back
            assert rest == chunk * 99

    def test_reader_stopped_early_lets_go(self, location: Location) -> None:
        put(location, OBJECT, DATA * 64)
        for _ in range(20):  # would exhaust a connection pool if abandoned bodies stayed open
            with location.reader(OBJECT) as (source, _size):
                assert source.read(10) == DATA[:10]
        assert get(location, OBJECT) == (DATA * 64, len(DATA) * 64)

    def test_overwrite(self, location: Location) -> None:
        put(location, OBJECT, b"first version, longer")
        put(location, OBJECT, b"second")
        assert get(location, OBJECT) == (b"second", 6)

    def test_objects_are_independent(self, location: Location) -> None:
        paths = [f"dag/run/task/{i}/key.xcs" for i in range(3)] + ["dag/run2/task/-1/key.xcs"]
        for i, path in enumerate(paths):
            put(location, path, bytes([i]) * (i + 1))
        for i, path in enumerate(paths):
            assert get(location, path)[0] == bytes([i]) * (i + 1)

    def test_failed_write_leaves_nothing(self, location: Location) -> None:
        with pytest.raises(Boom):
            write_then_fail(location, OBJECT, DATA, Boom())
        assert not location.exists(OBJECT)
        assert every_file(location) == []
        with pytest.raises(ObjectNotFoundError):
            get(location, OBJECT)

    def test_failed_overwrite_keeps_the_old_object(self, location: Location) -> None:
        put(location, OBJECT, b"old")
        with pytest.raises(Boom):
            write_then_fail(location, OBJECT, b"new but unfinished", Boom())
        assert get(location, OBJECT) == (b"old", 3)
        assert every_file(location) == [OBJECT]

    def test_partial_object_never_visible(self, location: Location) -> None:
        with location.writer(OBJECT) as sink:
            sink.write(DATA)
            sink.flush()
            assert not location.exists(OBJECT)
            assert list(location.list()) == []
        assert location.exists(OBJECT)
        assert [info.relpath for info in location.list()] == [OBJECT]

    def test_pending_write_visible_only_after_commit(self, location: Location) -> None:
        pending = location.begin_write(OBJECT)
        pending.stream.write(DATA)
        assert not location.exists(OBJECT)
        assert list(location.list()) == []
        pending.commit()
        assert get(location, OBJECT) == (DATA, len(DATA))

    def test_aborted_write_leaves_nothing(self, location: Location) -> None:
        pending = location.begin_write(OBJECT)
        pending.stream.write(DATA)
        pending.abort()
        assert not location.exists(OBJECT)
        assert every_file(location) == []

    def test_missing_object(self, location: Location) -> None:
        with pytest.raises(ObjectNotFoundError, match="no object at") as info:
            get(location, OBJECT)
        assert location.uri(OBJECT) in str(info.value)
        assert isinstance(info.value, FileNotFoundError)

    # -- ranges, delete, list --------------------------------------------------------------
    @pytest.mark.parametrize(
        ("start", "end"), [(0, 14), (0, None), (100, 200), (len(DATA) - 48, None), (len(DATA) - 5, len(DATA))]
    )
    def test_read_range(self, location: Location, start: int, end: int | None) -> None:
        put(location, OBJECT, DATA)
        assert location.read_range(OBJECT, start, end) == DATA[start:end]

    def test_read_range_missing(self, location: Location) -> None:
        with pytest.raises(ObjectNotFoundError):
            location.read_range(OBJECT, 0, 14)

    def test_delete(self, location: Location) -> None:
        put(location, OBJECT, DATA)
        assert location.delete(OBJECT) is True
        assert not location.exists(OBJECT)
        assert location.delete(OBJECT) is False

    def test_delete_leaves_other_objects(self, location: Location) -> None:
        other = "dag/run/task/-1/other.xcs"
        put(location, OBJECT, b"a")
        put(location, other, b"b")
        location.delete(OBJECT)
        assert get(location, other) == (b"b", 1)

    def test_list(self, location: Location) -> None:
        objects = {
            "dag/run/task/-1/a.xcs": b"a" * 10,
            "dag/run/task/3/b.xcs": b"",
            "dag/run2/task/-1/a.xcs": b"c" * 30,
            "other/run/task/-1/a.xcs": b"d" * 5,
        }
        for path, data in objects.items():
            put(location, path, data)
        location.fs.makedirs(f"{location.root}/dag/empty/folder", exist_ok=True)  # folders are not objects
        found = list(location.list())
        assert all(isinstance(info, ObjectInfo) for info in found)
        assert {info.relpath: info.size for info in found} == {p: len(d) for p, d in objects.items()}
        assert [info.relpath for info in found] == sorted(objects)
        for info in found:
            assert info.modified is None or info.modified > 0

    def test_list_prefix(self, location: Location) -> None:
        for path in ("dag/run/t/-1/a.xcs", "dag/run2/t/-1/a.xcs", "dag2/run/t/-1/a.xcs", "da/run/t/-1/a.xcs"):
            put(location, path, b"x")
        assert [i.relpath for i in location.list("dag")] == ["dag/run/t/-1/a.xcs", "dag/run2/t/-1/a.xcs"]
        assert [i.relpath for i in location.list("dag/run")] == ["dag/run/t/-1/a.xcs"]
        assert list(location.list("nothing")) == []

    def test_list_empty_store(self, location: Location) -> None:
        assert list(location.list()) == []

    def test_list_skips_hidden_temp_files(self, location: Location) -> None:
        put(location, OBJECT, b"x")
        location.fs.pipe_file(f"{location.root}/dag/run/task/-1/.return_value.xcs.0123abcd.tmp", b"partial")
        assert [info.relpath for info in location.list()] == [OBJECT]

    # -- names -----------------------------------------------------------------------------
    def test_uri_and_relative(self, location: Location) -> None:
        uri = location.uri(OBJECT)
        assert uri == f"{location.url}/{OBJECT}"
        assert location.relative(uri) == OBJECT

    @pytest.mark.parametrize(
        "make_uri",
        [
            pytest.param(lambda url: "s3://other-bucket/" + OBJECT, id="other-scheme"),
            pytest.param(lambda url: "memory://elsewhere/" + OBJECT, id="other-memory"),
            pytest.param(lambda url: f"{url}-evil/{OBJECT}", id="sibling-sharing-prefix"),
            pytest.param(lambda url: f"{url.rsplit('/', 1)[0]}/{OBJECT}", id="parent-folder"),
            pytest.param(lambda url: url, id="root-itself"),
            pytest.param(lambda url: f"{url}/", id="root-with-slash"),
            pytest.param(lambda url: f"{url}/../victim.txt", id="dotdot"),
            pytest.param(lambda url: f"{url}/../../etc/passwd", id="dotdot-twice"),
            pytest.param(lambda url: f"{url}/dag/run/task/-1/..", id="dotdot-last"),
            pytest.param(lambda url: f"{url}/dag/run/../../../victim.txt", id="dotdot-inside"),
            pytest.param(lambda url: f"{url}/./{OBJECT}", id="dot"),
            pytest.param(lambda url: f"{url}//etc/passwd", id="absolute"),
            pytest.param(lambda url: f"{url}/dag//run/task/-1/k.xcs", id="double-slash"),
            pytest.param(lambda url: f"{url}/{OBJECT}/", id="trailing-slash"),
            pytest.param(lambda url: f"{url}/dag\\..\\..\\victim.txt", id="backslashes"),
            pytest.param(lambda url: f"{url}/dag/run\\task/-1/k.xcs", id="backslash"),
            pytest.param(lambda url: f" {url}/{OBJECT}", id="leading-space"),
        ],
    )
    def test_relative_refuses(self, location: Location, make_uri: Callable[[str], str]) -> None:
        with pytest.raises(ForgedReferenceError):
            location.relative(make_uri(location.url))

    # -- retries ---------------------------------------------------------------------------
    def test_transient_errors_are_retried(self, location: Location, flaky_location: Any) -> None:
        put(location, OBJECT, DATA)
        flaky, fs = flaky_location(cat_file=[OSError("reset"), ConnectionError("refused")])
        assert flaky.read_range(OBJECT, 0, 10) == DATA[:10]
        assert fs.calls["cat_file"] == 3

    def test_missing_object_is_not_retried(self, flaky_location: Any) -> None:
        flaky, fs = flaky_location(cat_file=[])
        with pytest.raises(ObjectNotFoundError):
            flaky.read_range(OBJECT, 0, 10)
        assert fs.calls["cat_file"] == 1

    def test_retry_budget_exhausted(self, location: Location, flaky_location: Any) -> None:
        put(location, OBJECT, DATA)
        flaky, fs = flaky_location(rm_file=[TimeoutError("slow")] * 10)
        with pytest.raises(StoreUnavailableError, match="failed after 3 attempts: TimeoutError: slow"):
            flaky.delete(OBJECT)
        assert fs.calls["rm_file"] == 3
        assert location.exists(OBJECT)

    def test_listing_is_retried(self, location: Location, flaky_location: Any) -> None:
        put(location, OBJECT, DATA)
        flaky, fs = flaky_location(find=[OSError("flaky")])
        assert [i.relpath for i in flaky.list()] == [OBJECT]
        assert fs.calls["find"] == 2


class TestFileStore(StoreContract):
    @pytest.fixture
    def location(self, tmp_path: Path, fast_retry: RetryPolicy) -> Location:
        url = f"file://{tmp_path}/store"
        fs, root = fsspec_filesystem(url)
        return Location(url, fs, root, fast_retry)

    def test_writes_through_a_temp_file(self, location: Location) -> None:
        assert location.renames_atomically

    def test_failed_write_leaves_no_temp_file(self, location: Location, tmp_path: Path) -> None:
        temp_files: list[Path] = []
        with pytest.raises(Boom):
            write_then_fail(
                location, OBJECT, DATA, Boom(), lambda: temp_files.extend(tmp_path.rglob(".*.tmp"))
            )
        assert temp_files, "writes go to a hidden temp file beside the target"
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    def test_interrupted_write_leaves_nothing(self, location: Location, tmp_path: Path) -> None:
        with pytest.raises(KeyboardInterrupt):
            write_then_fail(location, OBJECT, DATA, KeyboardInterrupt())
        assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def location(self, clean_memory_fs: MemoryFileSystem, fast_retry: RetryPolicy) -> Location:
        url = "memory://xcom-tests/store"
        fs, root = fsspec_filesystem(url)
        assert isinstance(fs, MemoryFileSystem)
        return Location(url, fs, root, fast_retry)

    def test_writes_through_a_temp_file(self, location: Location) -> None:
        # MemoryFileSystem publishes a file when it is opened: only a rename makes writes atomic.
        assert location.renames_atomically


@pytest.mark.s3
class TestS3Store(StoreContract):
    """The same contract on a real S3 API (moto), through s3fs."""

    @pytest.fixture
    def location(self, s3_server: Any, s3_bucket: str, fast_retry: RetryPolicy) -> Location:
        import fsspec

        fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3_server.storage_options())
        return Location(f"s3://{s3_bucket}/xcom", fs, f"{s3_bucket}/xcom", fast_retry)

    def test_uploads_are_published_on_completion(self, location: Location) -> None:
        assert not location.renames_atomically


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
