"""What the CLI shows: rich tables and progress on a terminal, plain text into a pipe, and on
stdout nothing but the command's output (one JSON document with --json), whatever the store."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from tests.lifecycle.stores import Place, make_store, origin, run_cli
from tests.unit.test_cli_output import HOSTILE, push

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    # COLUMNS and LINES would override the pseudo-terminal's size (pytest-xdist's workers have them).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRFLOW__XCOMSTORE") and k not in ("COLUMNS", "LINES")
    }
    return {**env, "TERM": "xterm-256color", **extra}


def in_terminal(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the installed xcomstore with stdout and stderr on a pseudo-terminal 200 columns
    wide; return its exit status and everything the terminal received."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen(
        [str(BIN / "xcomstore"), *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env or clean_env(),
    )
    os.close(follower)
    received = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    return process.wait(timeout=120), received.decode("utf-8", "replace")


def test_a_terminal_gets_a_table_with_names_escaped(file_url: str) -> None:
    for key in HOSTILE:
        push(file_url, key, {"v": key})
    code, shown = in_terminal("--path", file_url, "ls")
    assert code == 0, shown
    assert "─" in shown, "no table drawn"
    assert "MODIFIED" in shown
    assert "\\x1b[31mred" in shown  # the name, escaped
    assert "\x1b[31mred" not in shown  # never the escape sequence itself
    assert "\u202e" not in shown
    assert "\x9b" not in shown


def test_a_pipe_gets_plain_text(file_url: str) -> None:
    push(file_url, "return_value", {"v": 1})
    done = subprocess.run(
        [str(BIN / "xcomstore"), "--path", file_url, "ls"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "─" not in done.stdout
    assert "\x1b" not in done.stdout
    assert done.stdout.splitlines()[0].split() == ["MODIFIED", "SIZE", "TYPE", "SUMMARY", "XCOM", "EXPIRES"]


def test_a_long_gc_shows_its_progress_on_a_terminal(file_url: str) -> None:
    store = make_store([file_url])
    for n in range(210):  # gc reports every 200 objects
        store.push(n, origin(key=f"k{n}"))
    code, shown = in_terminal("--path", file_url, "gc", "--expired-only", "--grace", "1s")
    assert code == 0, shown
    assert "200 objects scanned, 0 to remove (0 B)" in shown, shown
    assert "210 objects scanned" in shown


@pytest.mark.parametrize(
    "command",
    [["ls", "--json"], ["du", "--json"], ["verify", "--json"], ["gc", "--expired-only", "--json"]],
)
def test_stdout_is_one_json_document(
    place: Place, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    make_store([place.url], place.opener).push({"a": 1}, origin())
    done = run_cli(capsys, "--path", place.url, *command)
    assert done.code == 0, done.err
    json.loads(done.out)  # the whole of stdout, no log line before or after


@pytest.mark.s3
def test_the_installed_command_on_s3_prints_json_alone(s3_url: str, s3_fast: object) -> None:
    make_store([s3_url], s3_fast).push({"a": 1}, origin())  # type: ignore[arg-type]
    done = subprocess.run(
        [str(BIN / "xcomstore"), "ls", "--path", s3_url, "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (listed,) = json.loads(done.stdout)
    assert listed["origin"]["key"] == "return_value"
