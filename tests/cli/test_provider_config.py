"""`airflow config list` knows the [xcomstore] section from the provider metadata: each option
with its description when descriptions are asked for (Airflow shows none by default, for any
section), and the keys masked as sensitive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xcomstore.core.settings import OPTIONS

AIRFLOW = Path(sys.executable).parent / "airflow"
KEY = "k1:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="


def config_list(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__XCOMSTORE__ENCRYPTION_KEYS=KEY)
    done = subprocess.run(
        [str(AIRFLOW), "config", "list", "--section", "xcomstore", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_descriptions_and_sensitive_keys(tmp_path: Path) -> None:
    described = config_list(tmp_path, "--include-descriptions")
    for option in OPTIONS:
        assert f"# {option.description.splitlines()[0]}" in described, option.name
    masked = config_list(tmp_path, "--show-values", "--hide-sensitive")
    assert KEY not in masked
    assert "encryption_keys = < hidden >" in masked
