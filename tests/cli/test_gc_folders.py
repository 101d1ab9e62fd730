"""gc leaves no empty folders behind in a file store: the run, task and map-index folders of the
objects it deleted go with them, while folders that still hold something stay. Object stores
have no folders: there, gc deleting the objects leaves nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.lifecycle.stores import Place, RawObjects, make_store, origin, run_cli

from xcomstore.identity import Origin


def test_gc_removes_the_folders_it_emptied(
    place: Place, raw: RawObjects, capsys: pytest.CaptureFixture[str]
) -> None:
    expiring = make_store([place.url], place.opener, retention="1s")
    kept = make_store([place.url], place.opener)
    for map_index in (0, 1):
        expiring.push({"n": map_index}, origin(task="mapped", map_index=map_index))
    expiring.push({"n": 2}, origin(task="plain"))
    other = Origin(dag_id="lifecycle", run_id="other-run", task_id="t", map_index=-1, key="return_value")
    survivor = kept.push({"keep": True}, other)["uri"]
    time.sleep(1.2)
    done = run_cli(capsys, "--path", place.url, "gc", "--expired-only", "--grace", "1s", "--json")
    assert done.code == 0, done.err
    assert raw.files(place.url) == [survivor]
    if place.kind == "file":
        root = Path(place.url[len("file://") :])
        folders = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())
        assert folders == [
            "lifecycle",
            "lifecycle/other-run",
            "lifecycle/other-run/t",
            "lifecycle/other-run/t/-1",
        ]
        assert root.is_dir(), "the store's own folder stays"


def test_a_dry_run_removes_no_folder(file_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    make_store([file_url], retention="1s").push({"n": 1}, origin())
    time.sleep(1.2)
    done = run_cli(capsys, "--path", file_url, "gc", "--expired-only", "--grace", "1s", "--dry-run")
    assert done.code == 0, done.err
    root = Path(file_url[len("file://") :])
    assert len([p for p in root.rglob("*") if p.is_file()]) == 1
    assert len([p for p in root.rglob("*") if p.is_dir()]) == 4
