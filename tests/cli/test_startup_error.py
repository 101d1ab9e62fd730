"""A bad setting stops Airflow at start-up with one readable line: the ConfigError's message and
its suggestion, not a 72-line traceback through Airflow's import machinery. Anyone catching the
error (a DAG file's import, a runner that logs it) still gets a ConfigError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xcomstore.errors import ConfigError

BIN = Path(sys.executable).parent
BEFORE = 72  # lines `airflow dags list` printed, a traceback ending in the message


def airflow_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__XCOM_BACKEND="xcomstore.XComStoreBackend",
        AIRFLOW__XCOMSTORE__PATH=f"file://{home}/xcom",
        **{f"AIRFLOW__XCOMSTORE__{k.upper()}": v for k, v in settings.items()},
    )
    return env


def run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "airflow"), "dags", "list"],
        [sys.executable, "-c", "import airflow.sdk.execution_time.xcom"],
    ],
    ids=["airflow dags list", "python -c import"],
)
def test_a_misspelled_setting_stops_start_up_in_one_line(tmp_path: Path, command: list[str]) -> None:
    done = run(airflow_env(tmp_path, treshold="64KiB"), *command)
    assert done.returncode == 1, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert "Traceback" not in done.stderr
    (line,) = [line for line in lines if "treshold" in line]
    assert line.startswith("xcomstore: unknown setting [xcomstore] treshold (AIRFLOW__XCOMSTORE__TRESHOLD)")
    assert "did you mean 'threshold'?" in line
    assert len(lines) < BEFORE
    assert len(lines) <= 2, lines  # the line, and at most one of Airflow's own log lines


def test_whoever_catches_it_gets_a_config_error(tmp_path: Path) -> None:
    """In-process (a DAG file importing Airflow, a runner that logs what failed), the error is
    still a ConfigError, and an Exception: `except Exception` handlers keep working."""
    script = (
        "from xcomstore.errors import ConfigError\n"
        "try:\n"
        "    import airflow.sdk.execution_time.xcom\n"
        "except Exception as exc:\n"
        "    assert isinstance(exc, ConfigError), type(exc)\n"
        "    print('caught', exc)\n"
    )
    done = run(airflow_env(tmp_path, compression="zip"), sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr
    assert (
        "caught [xcomstore] compression (AIRFLOW__XCOMSTORE__COMPRESSION): unknown compression 'zip'"
        in done.stdout
    )
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        (
            "key=a -> file:///a; dag=x -> file:///b",
            "rule 2 ('dag=x -> file:///b'): condition 'dag=x': unknown field 'dag'",
        ),
        (
            "key=a -> file:///a; key=b -> hdfs2://cluster/xcom",
            "rule 2 of [xcomstore] routes ('key=b -> hdfs2://cluster/xcom'): no filesystem for 'hdfs2'",
        ),
    ],
    ids=["unknown field", "unavailable scheme"],
)
def test_a_bad_route_stops_start_up_naming_its_rule(tmp_path: Path, routes: str, expected: str) -> None:
    done = run(
        airflow_env(tmp_path, routes=routes), sys.executable, "-c", "import airflow.sdk.execution_time.xcom"
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in (done.stdout + done.stderr).splitlines() if "routes" in line]
    assert line.startswith("xcomstore: "), line
    assert expected in line, line
