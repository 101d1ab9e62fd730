"""The store alone: after a real run, the metadata DB (a SQLite file) is deleted, and the CLI still
lists, shows, fetches, verifies and sizes every stored XCom from the objects' own headers.

It stops the shared Airflow process to delete its DB, so it runs after every other Airflow test
(see airflow_run.order_items).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from tests.lifecycle import airflow_run
from tests.lifecycle.airflow_run import DAG_ID
from tests.lifecycle.stores import CliResult, run_cli

pytestmark = pytest.mark.airflow
DELETES_THE_AIRFLOW_DB = True
ROWS = 2000


def expected_frame() -> pd.DataFrame:
    return pd.DataFrame({"row": range(ROWS), "half": [i / 2 for i in range(ROWS)]})


def expected_array() -> np.ndarray:
    return np.arange(ROWS, dtype="float64").reshape(40, 50)


@dataclass(frozen=True)
class Orphaned:
    """A store whose metadata DB is gone, and what the deleted DB had said about it."""

    store: str
    run_id: str
    refs: dict[str, dict[str, Any]]  # key -> the reference that was in the DB
    cli_env: dict[str, str]  # the Airflow environment of the deleted DB


@pytest.fixture(scope="module")
def orphaned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Orphaned:
    """One run, then its DB deleted: shared by the tests of this module."""
    airflow = airflow_run.shared(request)
    store = f"file://{tmp_path_factory.mktemp('orphaned')}/store"
    run = airflow.run(store)
    assert run.state == "success", run.describe()
    refs = {row.key: row.value for row in run.references()}
    cli_env = airflow.cli_env()
    airflow_run.close()
    airflow.db_path.unlink()
    return Orphaned(store, run.run_id, refs, cli_env)


def cli(capsys: Any, scene: Orphaned, *args: str) -> CliResult:
    return run_cli(capsys, "--path", scene.store, *args)


def test_ls_and_show(orphaned: Orphaned, capsys: Any) -> None:
    listed = cli(capsys, orphaned, "ls", "--json").json()
    by_key = {o["origin"]["key"]: o for o in listed}
    assert {k: o["uri"] for k, o in by_key.items()} == {k: r["uri"] for k, r in orphaned.refs.items()}
    assert {k: o["type"] for k, o in by_key.items()} == {
        "return_value": "pandas.DataFrame",
        "array": "numpy.ndarray",
        "extra": "str",
    }
    assert {(o["origin"]["run_id"], o["origin"]["task_id"]) for o in listed} == {(orphaned.run_id, "produce")}
    table = cli(capsys, orphaned, "ls", "--dag", DAG_ID).out
    for summary in ("DataFrame 2000×2", "ndarray float64 40×50", "str of 5000 characters", "3 objects"):
        assert summary in table, table

    shown = cli(capsys, orphaned, "show", orphaned.refs["return_value"]["uri"])
    assert shown.code == 0, shown.err
    assert "DataFrame 2000×2" in shown.out
    assert f"{DAG_ID}/{orphaned.run_id}/produce/return_value" in shown.out
    preview = cli(capsys, orphaned, "show", orphaned.refs["array"]["uri"], "--json").json()
    assert preview["header"]["meta"]["shape"] == [40, 50]


def test_get_du_verify(
    orphaned: Orphaned, capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, orphaned, "get", orphaned.refs["return_value"]["uri"], "-o", "x.parquet").code == 0
    pd.testing.assert_frame_equal(pq.read_table(tmp_path / "x.parquet").to_pandas(), expected_frame())
    assert cli(capsys, orphaned, "get", orphaned.refs["array"]["uri"], "-o", "x.npy").code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), expected_array(), strict=True)

    total = sum(r["stored_bytes"] for r in orphaned.refs.values())
    usage = cli(capsys, orphaned, "du", "--by", "run", "--json").json()
    assert usage == [{"run": f"{DAG_ID}/{orphaned.run_id}", "objects": 3, "bytes": total}]
    verified = cli(capsys, orphaned, "verify", "--json")
    assert (verified.code, verified.json()["checked"], verified.json()["failed"]) == (0, 3, 0)


def test_installed_command_in_the_deleted_dbs_environment(orphaned: Orphaned) -> None:
    done = subprocess.run(
        [str(airflow_run.BIN / "xcomstore"), "--path", orphaned.store, "ls", "--json"],
        env=orphaned.cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    listed = CliResult(0, done.stdout, "").json()
    assert sorted(o["uri"] for o in listed) == sorted(r["uri"] for r in orphaned.refs.values())
    db = orphaned.cli_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"][len("sqlite:///") :]
    assert not Path(db).exists(), "the CLI re-created the metadata DB"
