"""Every command that takes an object takes it as `ls` names it: an XCom id
(`dag_id/run_id/task_id[/map_index]/key`), a URI, or a path inside the store (an object path,
or a local file's own path, absolute or relative). Options go before or after the command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tests.lifecycle.stores import RUN_ID, Place, make_store, origin, run_cli

from xcomstore.storage.location import fsspec_filesystem
from xcomstore.version import __version__

DAG = "names"


@pytest.fixture
def stored(place: Place) -> dict[str, str]:
    return store_three(place)


@pytest.fixture
def stored_file(file_url: str) -> dict[str, str]:
    return store_three(Place("file", file_url, fsspec_filesystem))


def store_three(place: Place) -> dict[str, str]:
    """Three objects (one plain, two map indexes) in `place`: id -> URI."""
    store = make_store([place.url], place.opener)
    found = {}
    for map_index, value in [(-1, {"plain": 1}), (0, [0] * 10), (1, [1] * 10)]:
        where = origin(key="return_value", task="task", dag=DAG, map_index=map_index)
        ref = store.push(value, where)
        index = f"/{map_index}" if map_index >= 0 else ""
        found[f"{DAG}/{RUN_ID}/task{index}/return_value"] = ref["uri"]
    return found


def cli(capsys: pytest.CaptureFixture[str], place: Place, *args: str) -> tuple[int, str, str]:
    done = run_cli(capsys, "--path", place.url, *args)
    return done.code, done.out, done.err


def test_ls_lists_each_objects_id_and_uri(
    place: Place, stored: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, place, "ls", "--json")
    assert code == 0, err
    assert {o["id"]: o["uri"] for o in json.loads(out)} == stored
    code, out, err = cli(capsys, place, "ls", "-l")
    assert code == 0, err
    for xcom_id, uri in stored.items():
        (line,) = [line for line in out.splitlines() if uri in line]
        assert xcom_id in line


def test_show_get_verify_take_the_id_ls_prints(
    place: Place,
    stored: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    listed = json.loads(cli(capsys, place, "ls", "--json")[1])
    for obj in listed:
        code, out, err = cli(capsys, place, "show", obj["id"])
        assert code == 0, err
        assert obj["id"] in out
        code, out, err = cli(capsys, place, "verify", obj["id"], "--json")
        assert code == 0, err
        assert json.loads(out)["results"][0]["uri"] == obj["uri"]
        code, _, err = cli(capsys, place, "get", obj["id"], "-o", "out.json")
        assert code == 0, err
    assert json.loads((tmp_path / "out.json").read_text()) == [1] * 10


def test_a_mapped_id_in_brackets_and_a_uri_name_the_same_object(
    place: Place, stored: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    uri = stored[f"{DAG}/{RUN_ID}/task/1/return_value"]
    for name in (f"{DAG}/{RUN_ID}/task[1]/return_value", uri):
        code, out, err = cli(capsys, place, "verify", name, "--json")
        assert code == 0, err
        assert json.loads(out)["results"][0]["uri"] == uri


def test_the_object_path_inside_the_store(
    place: Place, stored: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    uri = stored[f"{DAG}/{RUN_ID}/task/return_value"]
    relpath = uri[len(place.url) + 1 :]
    code, out, err = cli(capsys, place, "show", relpath, "--json")
    assert code == 0, err
    assert json.loads(out)["uri"] == uri


def test_a_local_files_path_absolute_and_relative(
    stored_file: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    file_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = stored_file[f"{DAG}/{RUN_ID}/task/return_value"]
    path = Path(uri[len("file://") :])
    monkeypatch.chdir(path.parent.parent.parent)  # a relative path not starting with "-1"
    for name in (str(path), os.path.relpath(path)):
        done = run_cli(capsys, "--path", file_url, "verify", name, "--json")
        assert done.code == 0, done.err
        assert json.loads(done.out)["results"][0]["uri"] == uri


def test_an_id_nothing_is_stored_under_says_where_it_looked(
    place: Place, stored: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, place, "show", f"{DAG}/{RUN_ID}/task/7/return_value")
    assert code == 2
    assert f"{DAG}/{RUN_ID}/task/7/return_value" in err
    assert "Traceback" not in err


def test_options_go_before_or_after_the_command(
    stored_file: dict[str, str], file_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = run_cli(capsys, "--path", file_url, "--json", "ls")
    after = run_cli(capsys, "ls", "--path", file_url, "--json")
    assert before.code == after.code == 0, before.err + after.err
    assert json.loads(before.out) == json.loads(after.out)
    assert len(json.loads(after.out)) == 3


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    from xcomstore import cli

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "metadata DB" in text
    assert "gc" in text
