"""scripts/demo into a fresh folder: it runs the demo DAG, and the commands it prints at the end
work as printed in a new shell whose environment holds none of this one's variables.

Marked `demo`: it builds .venv-demo on its first run (about 40 s), which later runs reuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.demo
ROOT = Path(__file__).resolve().parents[2]


def without_airflow_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What scripts/demo printed, run into a fresh folder."""
    home = tmp_path_factory.mktemp("demo") / "home"
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo"), "--home", str(home)],
        capture_output=True,
        text=True,
        env=without_airflow_settings(),
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def printed_commands(out: str) -> list[str]:
    tail = out.split("Try it in a new shell:\n", 1)[1]
    return [line.strip() for line in tail.splitlines() if line.startswith("  ")]


def test_the_printed_commands_work_in_a_new_shell(demo: str, tmp_path: Path) -> None:
    commands = printed_commands(demo)
    assert commands[0].startswith("export AIRFLOW_HOME=")
    assert [c.split()[1] for c in commands[1:]] == ["ls", "show"]
    shell = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={tmp_path}", "bash", "--noprofile", "--norc", "-c"]
    done = subprocess.run(
        [*shell, "set -e\n" + "\n".join(commands)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    listing, _, shown = done.stdout.partition("\nDataFrame 200000×3  (")
    assert "5 objects" in listing, done.stdout  # extract, features, 3 shards (the rest stays inline)
    assert "xcomstore_demo/" in listing
    assert shown, f"show printed no header: {done.stdout}"
    assert "xcom     xcomstore_demo/" in shown


def test_the_demo_offloads_the_large_values(demo: str) -> None:
    assert "extract    return_value: offloaded DataFrame 200000×3" in demo
    assert "report     return_value: inline" in demo
    assert "7 ran, 0 not successful" in demo


def test_the_demo_never_deletes_a_folder_not_its_own(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not the demo's")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "not a demo folder" in done.stderr
    assert (tmp_path / "mine.txt").read_text() == "not the demo's"
