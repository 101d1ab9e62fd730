"""A local store that holds symlinks, FIFOs and directories where objects should be.

Whoever can write into the store's folder (a task, another DAG's author) must not make
xcomstore write, read or delete anything outside it, nor make the CLI crash or hang. Every
operation on a file:// location refuses a symlink anywhere below the root; listings skip what
is not a regular file and say so. The CLI runs in a subprocess with a timeout: a FIFO opened
for reading blocks forever, and must not take the test run with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.lifecycle.stores import make_store, origin

from xcomstore.core import layout
from xcomstore.errors import ForgedReferenceError
from xcomstore.storage import location as location_module

GOOD = origin(key="good")
EVIL = origin(dag="evil", key="value")


def snapshot(folder: Path) -> dict[str, tuple[int, float, bytes]]:
    """Every file below `folder` with its size, mtime and bytes: to show nothing changed."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def moved(stored: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """The same reference, pointing into another location (what a task could write to the DB)."""
    return {**stored, "uri": stored["uri"].replace(source, target, 1)}


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the store, holding a real object of DAG `evil` (written by another store)."""
    make_store([f"file://{tmp_path}/elsewhere"]).push({"secret": True}, EVIL)
    return tmp_path / "elsewhere"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_store([f"file://{tmp_path}/store"]).push({"good": 1}, GOOD)
    return tmp_path / "store"


def link_dag(root: Path, elsewhere: Path) -> None:
    """`<store>/evil -> <elsewhere>/evil`."""
    (root / "evil").symlink_to(elsewhere / "evil", target_is_directory=True)


def link_file(root: Path, elsewhere: Path) -> Path:
    """`<store>/<good's run folder>/…/value.xcs -> <elsewhere>/evil/…/value.xcs`, in a real folder."""
    relpath = layout.object_path(EVIL)
    link = root / relpath
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere / relpath)
    return link


def test_push_through_a_symlinked_dag_folder_is_refused(root: Path, elsewhere: Path) -> None:
    link_dag(root, elsewhere)
    before = snapshot(elsewhere)
    store = make_store([f"file://{root}"])
    with pytest.raises(ForgedReferenceError, match="symlink") as info:
        store.push({"overwrite": True}, EVIL)
    assert f"{root}/evil" in str(info.value)
    assert snapshot(elsewhere) == before
    with pytest.raises(ForgedReferenceError, match="symlink"):
        store.push({"new": True}, origin(dag="evil", key="other"))  # makedirs below the link
    assert snapshot(elsewhere) == before


def test_push_over_a_symlinked_object_is_refused(root: Path, elsewhere: Path) -> None:
    link = link_file(root, elsewhere)
    before = snapshot(elsewhere)
    with pytest.raises(ForgedReferenceError, match="symlink") as info:
        make_store([f"file://{root}"]).push({"overwrite": True}, EVIL)
    assert str(link) in str(info.value)
    assert snapshot(elsewhere) == before
    assert link.is_symlink()


@pytest.mark.parametrize("link", ["dag folder", "object file"])
def test_read_through_a_symlink_is_refused(root: Path, elsewhere: Path, link: str) -> None:
    stored = make_store([f"file://{elsewhere}"]).push({"secret": True}, EVIL)
    link_dag(root, elsewhere) if link == "dag folder" else link_file(root, elsewhere)
    store = make_store([f"file://{root}"])
    forged = moved(stored, f"file://{elsewhere}", f"file://{root}")
    for read in (
        lambda: store.pull(forged),
        lambda: store.read(forged["uri"]),
        lambda: store.head(forged["uri"]),
    ):
        with pytest.raises(ForgedReferenceError, match="symlink") as info:
            read()
        assert f"{root}/evil" in str(info.value) or f"{root}/lifecycle" in str(info.value)


@pytest.mark.parametrize("link", ["dag folder", "object file"])
def test_purge_through_a_symlink_deletes_nothing(root: Path, elsewhere: Path, link: str) -> None:
    stored = make_store([f"file://{elsewhere}"]).push({"secret": True}, EVIL)
    link_dag(root, elsewhere) if link == "dag folder" else link_file(root, elsewhere)
    before = snapshot(elsewhere)
    forged = moved(stored, f"file://{elsewhere}", f"file://{root}")
    with pytest.raises(ForgedReferenceError, match="symlink"):
        make_store([f"file://{root}"]).purge(forged)
    assert snapshot(elsewhere) == before
    assert (root / "evil").is_symlink() or (root / layout.object_path(EVIL)).is_symlink()


def test_repair_does_not_write_through_a_symlink(tmp_path: Path, elsewhere: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    make_store([f"file://{first}"]).push({"repair me": True}, EVIL)
    second.mkdir()
    link_dag(second, elsewhere)
    (elsewhere / layout.object_path(EVIL)).unlink()  # the "missing copy" repair would restore
    before = snapshot(elsewhere)
    done = cli(f"file://{first}, file://{second}", "repair")
    assert done.returncode != 0, done.stdout
    assert f"{second}/evil" in done.stderr, done.stderr
    assert "symlink" in done.stderr, done.stderr
    assert snapshot(elsewhere) == before


# -- listing: ls, verify, du, gc ----------------------------------------------------------------
def cli(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`xcomstore --path PATH ARGS` in a subprocess: a hang fails the test instead of stalling it."""
    return subprocess.run(
        [sys.executable, "-m", "xcomstore.cli", "--path", path, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def hostile(root: Path, elsewhere: Path) -> dict[str, Path]:
    """The store with a symlinked DAG folder, and a FIFO and a directory named like objects."""
    link_dag(root, elsewhere)
    folder = (root / layout.object_path(GOOD)).parent
    fifo = folder / "fifo.xcs"
    os.mkfifo(fifo)
    (folder / "folder.xcs").mkdir()
    return {"link": root / "evil", "fifo": fifo, "folder": folder / "folder.xcs"}


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["verify"],
        ["du"],
        ["gc", "--expired-only", "--grace", "0s"],
        ["gc", "--expired-only", "--dry-run"],
    ],
)
def test_listing_skips_and_reports_what_is_not_an_object(
    root: Path, elsewhere: Path, hostile: dict[str, Path], command: list[str]
) -> None:
    before = snapshot(elsewhere)
    done = cli(f"file://{root}", *command)
    assert "Traceback" not in done.stderr, done.stderr
    out = done.stdout + done.stderr
    assert f"skipped file://{hostile['link']}: symlink" in out, out
    assert f"skipped file://{hostile['fifo']}: fifo" in out, out
    assert f"skipped file://{hostile['folder']}: directory" in out, out
    assert done.returncode == (1 if command == ["verify"] else 0), out
    assert snapshot(elsewhere) == before
    assert hostile["fifo"].exists()
    assert hostile["link"].is_symlink()
    if command == ["ls"]:
        assert "1 objects" in done.stdout, done.stdout
    if command == ["verify"]:
        assert f"OK   {GOOD}" in done.stdout, done.stdout
        assert "1 checked" in done.stdout, done.stdout


def test_a_fifo_named_like_an_object_is_refused_without_blocking(
    root: Path, hostile: dict[str, Path]
) -> None:
    relpath = str(hostile["fifo"].relative_to(root))
    code = (
        "import sys\n"
        "from tests.lifecycle.stores import make_store\n"
        "from xcomstore.errors import ForgedReferenceError\n"
        f"location = make_store([{f'file://{root}'!r}]).location\n"
        "try:\n"
        f"    location.read_range({relpath!r}, 0, 10)\n"
        "except Exception as exc:\n"
        "    kind = 'ForgedReferenceError' if isinstance(exc, ForgedReferenceError) else type(exc).__name__\n"
        "    print(kind, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "ForgedReferenceError" in done.stdout, done
    assert "not a regular file" in done.stdout, done


def test_the_root_itself_may_be_a_symlink(tmp_path: Path) -> None:
    """An admin's choice: resolved once, when the location is opened."""
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    store = make_store([f"file://{tmp_path}/linked"])
    stored = store.push({"fine": True}, GOOD)
    assert store.pull(stored) == {"fine": True}
    assert (tmp_path / "real" / layout.object_path(GOOD)).is_file()
    assert [o.uri for o in store.list()] == [stored["uri"]]


# -- case-insensitive filesystems -----------------------------------------------------------------
def test_keys_differing_only_by_case_stay_apart_where_case_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This machine's filesystem tells case apart: the probe's answer is simulated."""
    monkeypatch.setattr(location_module, "detect_case_insensitive", lambda root: True, raising=False)
    store = make_store([f"file://{tmp_path}/store"])
    upper, lower = origin(dag="Dag", key="Key"), origin(dag="dag", key="key")
    stored = {o: store.push({"key": o.key}, o) for o in (upper, lower)}
    files = [str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert len({f.lower() for f in files}) == 2, f"one file on a case-insensitive disk: {files}"
    for o, ref in stored.items():
        assert store.pull(ref) == {"key": o.key}
        assert store.verify(ref["uri"]).origin == o
    assert sorted(obj.uri for obj in store.list()) == sorted(ref["uri"] for ref in stored.values())
    assert [obj.header.origin for obj in store.list("Dag") if obj.header] == [upper]
    assert store.purge(stored[upper])
    assert store.pull(stored[lower]) == {"key": "key"}


def test_the_case_probe_answers_here_and_leaves_nothing(tmp_path: Path) -> None:
    assert location_module.detect_case_insensitive(str(tmp_path / "missing")) is None
    assert location_module.detect_case_insensitive(str(tmp_path)) is False
    assert list(tmp_path.iterdir()) == []


def test_objects_written_before_case_folding_stay_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store on a case-insensitive disk written by an xcomstore that did not fold names (every
    run id holds a 'T'): its objects are still found, listed and purged."""
    url = f"file://{tmp_path}/store"
    monkeypatch.setattr(location_module, "detect_case_insensitive", lambda root: False)
    old = make_store([url]).push({"old": True}, origin(dag="Dag", key="Key"))
    monkeypatch.setattr(location_module, "detect_case_insensitive", lambda root: True)
    store = make_store([url])
    assert store.pull(old) == {"old": True}
    assert store.verify(old["uri"]).origin == origin(dag="Dag", key="Key")
    assert [obj.uri for obj in store.list()] == [old["uri"]]
    assert [obj.uri for obj in store.list("Dag")] == [old["uri"]]
    assert store.purge(old)
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_repair_reports_a_refused_copy_and_repairs_the_rest(tmp_path: Path, elsewhere: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    make_store([f"file://{first}"]).push({"repair me": True}, EVIL)
    make_store([f"file://{first}"]).push({"me too": True}, GOOD)
    second.mkdir()
    link_dag(second, elsewhere)
    before = snapshot(elsewhere)
    done = cli(f"file://{first}, file://{second}", "repair", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert [move["to"] for move in summary["copied"]] == [f"file://{second}/{layout.object_path(GOOD)}"]
    assert [move["to"] for move in summary["failed"]] == [f"file://{second}/{layout.object_path(EVIL)}"]
    assert "symlink" in summary["failed"][0]["reason"]
    assert (second / layout.object_path(GOOD)).is_file(), "the other object was not repaired"
    assert snapshot(elsewhere) == before
