"""scripts/run_needs.py: which installs `scripts/test ARGS` runs first (servers, browser)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "run_needs.py"
_spec = importlib.util.spec_from_file_location("run_needs", SCRIPT)
assert _spec is not None
assert _spec.loader is not None
run_needs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_needs)
ALL = ["servers", "browser"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], ALL, id="no-arguments-is-CI"),
        pytest.param(["tests/unit"], [], id="unit"),
        pytest.param(["tests/unit/", "-x", "-q"], [], id="unit-with-flags"),
        pytest.param(["tests/unit/test_store.py::TestFileStore::test_list"], [], id="unit-node-id"),
        pytest.param(["-k", "store and not list", "tests/unit"], [], id="unit-with-k"),
        pytest.param(["--deselect", "tests/faults/test_policy.py::x", "tests/unit"], [], id="option-value"),
        pytest.param(["tests"], ALL, id="whole-suite"),
        pytest.param(["tests/unit", "tests/faults"], ALL, id="unit-and-more"),
        pytest.param(["tests/unit/../faults"], ALL, id="resolved"),
        pytest.param(["tests/unitx"], ALL, id="prefix-is-not-a-folder"),
        pytest.param(["-x"], ALL, id="flags-only-run-everything"),
        pytest.param(["--ignore", "tests/unit/test_store.py"], ALL, id="ignore-is-no-path"),
        pytest.param(["-m", "not s3 and not azure and not gcs and not ui"], [], id="marker-excludes-both"),
        pytest.param(["-m", "not ui"], ["servers"], id="marker-excludes-browser"),
        pytest.param(["-mnot s3 and not azure and not gcs"], ["browser"], id="marker-attached"),
        pytest.param(["-m", "ui"], ALL, id="marker-ui-may-carry-a-server-marker"),
        pytest.param(["-m", "s3 and not ui"], ["servers"], id="marker-s3"),
        pytest.param(["-m", "not (", "tests"], ALL, id="bad-expression"),
    ],
)
def test_needs(args: list[str], expected: list[str]) -> None:
    assert run_needs.needs(args) == expected


def test_markers_are_pyprojects() -> None:
    assert {"s3", "azure", "gcs", "ui", "airflow"} <= run_needs.markers()


def test_prints_one_line() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "tests/unit", "-q"], capture_output=True, text=True, check=True
    )
    assert done.stdout == "\n"
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True)
    assert done.stdout == "servers browser\n"
