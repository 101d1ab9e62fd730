"""A bad [xcomstore] setting stops work with a message naming it, never silently.

The contract asks for the task to fail; a backend that refuses to let Airflow start at all
is accepted too (it is louder), as long as the message names the setting.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import param
from .harness import AirflowProcessDied, last_exception

pytestmark = pytest.mark.airflow

CASES = {
    # config name: what the message must mention (lower-cased)
    "bad-compression": ["compression", "zip"],
    "misspelled": ["treshold"],
    "bad-threshold": ["threshold", "lots"],
}


@pytest.mark.parametrize("name", [param(name) for name in CASES])
def test_invalid_setting_fails_clearly(all_targets: Any, name: str) -> None:
    target = all_targets(name)
    try:
        run = target.process.dag_test("xcs_lifecycle")
    except AirflowProcessDied as died:
        where, message = "Airflow start-up", last_exception(died.log)
    else:
        assert run.state_of("produce") == "failed", f"a bad setting was accepted: {run.describe()}"
        where, message = "the task", run.failure("produce")
        assert not target.store.objects(), "objects were written despite the bad setting"
    for word in CASES[name]:
        assert word in message.lower(), f"{where} failed without naming {word!r}:\n{message}"


def test_the_store_is_rebuilt_only_when_the_settings_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small values must not pay for reading the configuration on every push and pull."""
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__PATH", "file:///tmp/xcomstore-settings-a")
    from xcomstore.airflow import backend

    first = backend.current_store()
    assert backend.current_store() is first
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__THRESHOLD", "5")
    second = backend.current_store()
    assert second is not first
    assert second.settings.threshold == 5
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__PATH_CMD", "echo file:///tmp/xcomstore-settings-b")
    assert backend.current_store() is not second


def test_a_codec_that_cannot_load_stops_the_backend_import(tmp_path: Path) -> None:
    """Codecs load when Airflow imports the backend (every component), not at the first task."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))},
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__XCOMSTORE__PATH": f"file://{tmp_path}/store",
        "AIRFLOW__XCOMSTORE__CODECS": "no.such:Codec",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import xcomstore.airflow.backend"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0, f"the backend imported with a codec that cannot load:\n{done.stderr}"
    # A bad setting at start-up is one line (StartupConfigError, a ConfigError and a SystemExit).
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("xcomstore: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, f"not one line:\n{done.stderr}"
    for words in ("[xcomstore] codecs", "no.such:Codec"):
        assert words in message, f"the error does not name {words!r}:\n{message}"
