"""A full disk and a read-only location, on a real 1 MiB tmpfs mounted for the test.

Mounting needs root (the tests skip, saying so, where mount is refused). A read-only location is
a read-only remount: `chmod 0500` does not stop root, whom these tests run as.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.lifecycle.stores import make_store, origin

from xcomstore.core.store import XComStore
from xcomstore.errors import StoreUnavailableError

PAGE = 4096


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def store_on(disk: Path) -> XComStore:
    return make_store([f"file://{disk}/xcom"], compression="none")


def files(disk: Path) -> list[str]:
    """Every file on the disk, hidden temporary files included."""
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file())


def fill(disk: Path, leave: int) -> None:
    """Fill the disk up to `leave` free bytes (a whole number of pages) with one file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * PAGE)
        except OSError:
            pass
    os.truncate(filler, filler.stat().st_size // PAGE * PAGE - leave)
    stat = os.statvfs(disk)
    assert stat.f_bavail * stat.f_frsize == leave


def test_full_disk_fails_the_push_and_keeps_what_was_there(tiny_disk: Path) -> None:
    store = store_on(tiny_disk)
    first = store.push(b"first" * 200, origin(key="first"))
    before = files(tiny_disk)
    where = origin(key="too_big")
    with pytest.raises(StoreUnavailableError, match="No space left on device") as info:
        store.push(os.urandom(2 << 20), where)
    assert str(where) in str(info.value)
    assert f"file://{tiny_disk}/xcom/" in str(info.value)
    assert files(tiny_disk) == before, "a partial or temporary file was left behind"
    assert store.pull(first) == b"first" * 200


def test_write_failing_at_close_leaves_no_temporary_file(tiny_disk: Path) -> None:
    store = store_on(tiny_disk)
    first = store.push(b"first" * 200, origin(key="first"))
    fill(tiny_disk, leave=PAGE)
    before = files(tiny_disk)
    with pytest.raises(StoreUnavailableError, match="No space left on device"):
        store.push(os.urandom(6000), origin(key="two_pages"))  # one page fits, the rest fails on close
    assert files(tiny_disk) == before, "a partial or temporary file was left behind"
    assert store.pull(first) == b"first" * 200


def test_read_only_location_fails_the_push_clearly(tiny_disk: Path) -> None:
    store = store_on(tiny_disk)
    first = store.push({"kept": True}, origin(key="first"))
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    where = origin(key="second")
    with pytest.raises(StoreUnavailableError, match="Read-only file system") as info:
        store.push({"new": True}, where)
    assert str(where) in str(info.value)
    assert f"file://{tiny_disk}/xcom/" in str(info.value)
    assert files(tiny_disk) == ["xcom/lifecycle/manual__2026-01-02T03%3A04%3A05%2B00%3A00/task/-1/first.xcs"]
    assert store.pull(first) == {"kept": True}
