"""Temporary files of a writer killed mid-push (`kill -9`: no abort runs, the file stays).

A local store writes each object to a hidden temporary file and renames it into place. The
names carry a fixed marker, so that ls and du report what interrupted writes left, and gc
removes those older than its grace period (a younger one may belong to a push in flight).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.lifecycle.stores import make_store, origin, run_cli

from xcomstore.core import layout
from xcomstore.sizes import human_bytes
from xcomstore.storage.location import TEMP_MARKER

TWO_HOURS = 7200
KILLED_BYTES = 300_000

WRITER = """
import sys
from tests.lifecycle.stores import make_store, origin
location = make_store([sys.argv[1]]).location
pending = location.begin_write(sys.argv[2])
pending.stream.write(b"x" * int(sys.argv[3]))
pending.stream.flush()
print("writing", flush=True)
sys.stdin.read()  # until killed
"""


def kill_a_writer(url: str, relpath: str) -> None:
    """A push that is killed with SIGKILL halfway through writing its object."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, relpath, str(KILLED_BYTES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "writing"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)


def age(path: Path, seconds: float) -> None:
    then = path.stat().st_mtime - seconds
    os.utime(path, (then, then))


def hidden_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*") if p.is_file())


@pytest.fixture
def left_behind(tmp_path: Path) -> dict[str, Any]:
    """One object, the temporary file of a killed writer (two hours old), a young one of a
    push that may still be running, and an old one named as xcomstore did before the marker."""
    url = f"file://{tmp_path}/store"
    root = tmp_path / "store"
    stored = make_store([url]).push({"kept": True}, origin(key="kept"))
    kill_a_writer(url, layout.object_path(origin(key="killed")))
    (killed,) = hidden_files(root)
    age(killed, TWO_HOURS)
    young = killed.parent / f".young.xcs{TEMP_MARKER}{'0' * 32}"
    young.write_bytes(b"y" * 1000)
    legacy = killed.parent / f".legacy.xcs.{'a' * 32}.tmp"
    legacy.write_bytes(b"z" * 500)
    age(legacy, TWO_HOURS)
    return {"url": url, "root": root, "killed": killed, "young": young, "legacy": legacy, "stored": stored}


def test_a_killed_writer_leaves_a_recognisable_temporary_file(left_behind: dict[str, Any]) -> None:
    killed: Path = left_behind["killed"]
    assert killed.name.startswith(".killed.xcs" + TEMP_MARKER), killed.name
    assert killed.stat().st_size == KILLED_BYTES


@pytest.mark.parametrize("command", ["ls", "du"])
def test_ls_and_du_report_temporary_files(
    left_behind: dict[str, Any], capsys: pytest.CaptureFixture[str], command: str
) -> None:
    done = run_cli(capsys, "--path", left_behind["url"], command)
    assert done.code == 0, done.err
    total = human_bytes(KILLED_BYTES + 1000 + 500)
    line = (
        f"3 temporary files, {total} (left by interrupted writes; `xcomstore gc` removes those older than 1h)"
    )
    assert line in done.out, done.out


def test_gc_dry_run_counts_old_temporary_files_and_keeps_them(
    left_behind: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    done = run_cli(capsys, "--path", left_behind["url"], "gc", "--expired-only", "--dry-run")
    assert done.code == 0, done.err
    assert f"would remove 2 temporary files ({human_bytes(KILLED_BYTES + 500)})" in done.out, done.out
    assert len(hidden_files(left_behind["root"])) == 3


def test_gc_removes_temporary_files_older_than_the_grace_period(
    left_behind: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    done = run_cli(capsys, "--path", left_behind["url"], "gc", "--expired-only", "--json")
    assert done.code == 0, done.err
    summary = done.json()
    assert summary["removed"] == {"temporary": {"objects": 2, "bytes": KILLED_BYTES + 500}}
    assert (summary["scanned"], summary["temporary_spared_young"]) == (1, 1)
    assert hidden_files(left_behind["root"]) == [left_behind["young"]]
    assert make_store([left_behind["url"]]).pull(left_behind["stored"]) == {"kept": True}

    later = run_cli(capsys, "--path", left_behind["url"], "gc", "--expired-only", "--grace", "0s")
    assert "removed 1 temporary files" in later.out, later.out
    assert hidden_files(left_behind["root"]) == []
