"""StoreContract: what a Location must do on every kind of store, whatever the filesystem behind it.

Not collected itself. To run it on a store kind, subclass StoreContract in a test module, set
the capability flags to what that store does, and provide a `location` fixture that returns an
empty Location on it: tests/unit/test_store_file.py, tests/unit/test_store_memory.py, and
tests/lifecycle/test_store_servers.py (S3, Azure, GCS on their test servers).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from xcomstore.errors import ForgedReferenceError, ObjectNotFoundError, StoreUnavailableError
from xcomstore.storage.location import Location, ObjectInfo
from xcomstore.storage.retry import RetryPolicy

OBJECT = "dag/run/task/-1/return_value.xcs"
DATA = bytes(range(256)) * 64  # 16 KiB
#: Two retries without real waiting (three attempts), so that tests of failures stay fast.
CONTRACT_RETRY = RetryPolicy(retries=2, timeout=10.0, first_wait=0.0001)
#: The hidden file a renaming store writes beside OBJECT until the write commits.
TEMP_FILE = re.compile(r"dag/run/task/-1/\.return_value\.xcs\.xcstmp-[0-9a-f]{32}")


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
    """The behaviour every store kind must have. Subclasses set the flags and provide `location`.

    A reader reads front to back; whether it can seek depends on the store (object stores
    stream the object through one request)."""

    #: Writes go to a hidden temporary file beside the target, renamed into place on commit
    #: (local and memory filesystems). Otherwise (object stores) an upload is published only
    #: when it completes, and nothing at all is in the store while it is in progress.
    renames_atomically: ClassVar[bool]
    #: The store keeps folders of their own (an empty folder exists); object stores only have
    #: key prefixes, so a folder with no object in it is not there.
    has_directories: ClassVar[bool]
    #: list() tells when each object was last written.
    reports_mtime: ClassVar[bool]

    @pytest.fixture
    def location(self) -> Location:
        raise NotImplementedError("a StoreContract subclass provides an empty Location")

    @pytest.fixture
    def retry(self) -> RetryPolicy:
        """The retry policy a subclass gives its Location (and flaky_location uses)."""
        return CONTRACT_RETRY

    @pytest.fixture
    def flaky_location(self, location: Location, retry: RetryPolicy) -> Callable[..., tuple[Location, Flaky]]:
        """The same store behind a filesystem whose named methods fail first."""

        def make(**errors: list[BaseException]) -> tuple[Location, Flaky]:
            flaky = Flaky(location.fs, **errors)
            return Location(location.url, flaky, location.root, retry), flaky

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

    def test_interrupted_write_leaves_nothing(self, location: Location) -> None:
        """A BaseException that is no Exception (Ctrl-C, a task killed) aborts the write too."""
        with pytest.raises(KeyboardInterrupt):
            write_then_fail(location, OBJECT, DATA, KeyboardInterrupt())
        assert not location.exists(OBJECT)
        assert every_file(location) == []

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

    def test_write_in_progress_is_a_temp_file_or_nothing(self, location: Location) -> None:
        """While a write is in progress the store holds one hidden temporary file beside the
        target (renaming stores), or nothing at all (object stores publish on completion);
        committing leaves exactly the object."""
        assert location.renames_atomically is self.renames_atomically
        pending = location.begin_write(OBJECT)
        pending.stream.write(DATA)
        pending.stream.flush()
        during = every_file(location)
        if self.renames_atomically:
            assert len(during) == 1, during
            assert TEMP_FILE.fullmatch(during[0]), during
        else:
            assert during == []
        pending.commit()
        assert every_file(location) == [OBJECT]
        assert get(location, OBJECT) == (DATA, len(DATA))

    def test_failed_write_removes_what_it_wrote(self, location: Location) -> None:
        """The temporary file a renaming store wrote during a failed write is gone afterwards."""
        during: list[str] = []
        with pytest.raises(Boom):
            write_then_fail(location, OBJECT, DATA, Boom(), lambda: during.extend(every_file(location)))
        assert len(during) == (1 if self.renames_atomically else 0), during
        assert every_file(location) == []

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

    def test_aborted_overwrite_keeps_the_old_object(self, location: Location) -> None:
        put(location, OBJECT, b"old")
        pending = location.begin_write(OBJECT)
        pending.stream.write(DATA)
        pending.stream.flush()
        pending.abort()
        assert get(location, OBJECT) == (b"old", 3)
        assert every_file(location) == [OBJECT]

    def test_missing_object(self, location: Location) -> None:
        with pytest.raises(ObjectNotFoundError, match="no object at") as info:
            get(location, OBJECT)
        assert location.uri(OBJECT) in str(info.value)
        assert isinstance(info.value, FileNotFoundError)

    # -- ranges, delete, list --------------------------------------------------------------
    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (0, 14),
            (0, None),
            (100, 200),
            (len(DATA) - 48, None),
            (len(DATA) - 5, len(DATA)),
            (-48, None),  # the end of an object, as a blocked table's read takes its index
            (-48, -8),
            (-2 * len(DATA), 10),  # past the start: from the start
        ],
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
        assert list(location.list()) == []

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
        began = time.time()
        for path, data in objects.items():
            put(location, path, data)
        folder = f"{location.root}/dag/empty/folder"
        location.fs.makedirs(folder, exist_ok=True)
        # A folder exists only where the store has folders; either way it is no object.
        assert location.fs.isdir(folder) is self.has_directories
        found = list(location.list())
        assert all(isinstance(info, ObjectInfo) for info in found)
        assert {info.relpath: info.size for info in found} == {p: len(d) for p, d in objects.items()}
        assert [info.relpath for info in found] == sorted(objects)
        for info in found:
            if self.reports_mtime:
                # Within the test's time, allowing for a coarse clock (S3 keeps whole seconds).
                assert info.modified is not None
                assert began - 5 <= info.modified <= time.time() + 5, (info, began)
            else:
                assert info.modified is None

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
