"""What the CLI writes and prints, when names in the store are hostile.

An XCom key is chosen by whoever wrote the DAG: `xcomstore get` must not write where the key
says, and no name may reach the terminal as escape sequences or reordered text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xcomstore import cli
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.identity import Origin

HOSTILE = ["/tmp/x/pwned", "../../up", "\x1b[31mred", "a\u202eb", "\x9b31mc1", "line\nOK   forged", ".hidden"]
# What a terminal must never receive from a name: C0 and C1 controls, DEL, bidi controls.
UNSAFE = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029]]
UNSAFE += [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"file://{tmp_path}/store"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, two levels down so that `../../` stays inside tmp_path."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return work


def push(url: str, key: str, value: object = b"payload") -> str:
    """Store `value` under `key`, past the checks push() makes now: such objects exist all the
    same, written by an older xcomstore or straight into the store's folder."""
    store = XComStore.from_settings(Settings.from_mapping({"path": url, "threshold": "0"}))
    where = Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key=key)
    binary = store.codecs.binary_for(value)
    codec = binary or store.codecs.json
    payload = value if binary else store.codecs.json.dumps(value)[1]
    return store.offload(payload, codec, codec.describe(value), where).uri


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def files_below(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def visible(text: str) -> list[str]:
    """The unsafe characters in `text` (the line breaks the CLI prints itself are fine)."""
    return [c for c in text if c in UNSAFE and c != "\n"]


# -- get: the default output name --------------------------------------------------------------
@pytest.mark.parametrize("key", [*HOSTILE, "KEY", "x" * 500, ""])
def test_get_without_output_writes_a_safe_name_in_the_working_directory(
    tmp_path: Path, store_url: str, workdir: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    uri = push(store_url, key)
    before = files_below(tmp_path)
    code, out, err = run(capsys, "--path", store_url, "get", uri)
    assert code == 0, err
    written = sorted(set(files_below(tmp_path)) - set(before))
    assert len(written) == 1, written
    (name,) = [Path(w).name for w in written]
    assert (workdir / name).is_file(), f"written outside the working directory: {written}"
    assert name.endswith(".bin")
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"), name
    assert not name.startswith(".")
    assert len(name) <= 104
    assert (workdir / name).read_bytes() == b"payload"
    assert not visible(out), out


def test_get_keeps_a_plain_key_as_the_name(
    store_url: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(store_url, "return_value", {"a": 1})
    code, _, err = run(capsys, "--path", store_url, "get", uri)
    assert code == 0, err
    assert json.loads((workdir / "return_value.json").read_text()) == {"a": 1}


def test_get_with_an_absolute_key_does_not_write_there(
    tmp_path: Path, store_url: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x").mkdir()
    uri = push(store_url, f"{tmp_path}/x/pwned")
    code, _, err = run(capsys, "--path", store_url, "get", uri)
    assert code == 0, err
    assert list((tmp_path / "x").iterdir()) == []
    assert not os.path.exists("/tmp/x/pwned.bin")


# -- printing: no control characters reach the terminal ----------------------------------------
@pytest.mark.parametrize("command", [["ls"], ["verify"], ["du", "--by", "run"], ["gc", "--expired-only"]])
def test_listings_escape_control_characters(
    store_url: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    for key in HOSTILE:
        push(store_url, key, {"v": key})
    code, out, err = run(capsys, "--path", store_url, *command)
    assert code == 0, err
    assert not visible(out + err), out + err
    if command == ["ls"]:
        assert "\\x1b[31mred" in out, out
        assert "a\\u202eb" in out, out
        assert "\\x9b31mc1" in out, out
    if command == ["verify"]:
        assert "line\\nOK   forged" in out, out
        assert len([line for line in out.splitlines() if line.startswith("OK")]) == len(HOSTILE), out


@pytest.mark.parametrize("command", [["ls", "--json"], ["verify", "--json"], ["du", "--json"]])
def test_json_output_escapes_control_characters_and_keeps_the_values(
    store_url: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    for key in [*HOSTILE, "café"]:
        push(store_url, key, {"v": key})
    code, out, err = run(capsys, "--path", store_url, *command)
    assert code == 0, err
    assert not visible(out), out
    document = json.loads(out)
    if command == ["ls", "--json"]:
        assert sorted(o["origin"]["key"] for o in document) == sorted([*HOSTILE, "café"])
        assert "café" in out, "non-ASCII text stays readable"


def test_show_and_errors_escape_control_characters(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(store_url, "\x1b]0;title\x07", {"v": "\x1b[2J\u202e"})
    code, out, err = run(capsys, "--path", store_url, "show", uri)
    assert code == 0, err
    assert not visible(out), out
    code, out, err = run(capsys, "--path", store_url, "show", uri.replace(".xcs", "\x1b[31m.xcs"))
    assert code == 2
    assert not visible(out + err), err
