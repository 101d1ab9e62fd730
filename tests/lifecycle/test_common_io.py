"""Coming from common-io: XComs that common-io 1.11's object-storage backend wrote in a real DAG
run (one value uncompressed, one gzipped, strings that look like its paths) are read by
xcomstore from a task of another DAG run, purged on a rerun, migrated (dry run, a crash half
way and its resumption, a rerun that changes nothing) and, once their DAG is deleted, collected
by gc. One Airflow process runs common-io's backend, the shared one xcomstore; both use the
same metadata DB.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.lifecycle.airflow_run import DAGS, THRESHOLD, SharedAirflow
from tests.lifecycle.stores import RawObjects, run_cli

from xcomstore.airflow import common_io
from xcomstore.airflow.environment import configured_store
from xcomstore.ops.migrate import XComRow, migrate
from xcomstore.ops.xcom_rows import MetadataDbRows

if TYPE_CHECKING:
    from tests.integration.harness import AirflowProcess

COMMON_IO_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
WRITER, READER = "xcsl_cio_write", "xcsl_cio_read"
LOOKALIKES = ("not_a_uuid", "other_task", "escaping", "upper_uuid", "elsewhere")


@pytest.fixture
def common_io_airflow(airflow: SharedAirflow, tmp_path: Path) -> Iterator[tuple[AirflowProcess, str]]:
    """An Airflow process whose XCom backend is common-io's, on the shared process's DB."""
    from tests.integration.harness import DAGS_FOLDER, BackendConfig

    base = f"file://{tmp_path}/common-io"
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow.db_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(DAGS_FOLDER), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": base,
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": str(THRESHOLD),
        "XCS_CIO_BASE": base,
    }
    config = BackendConfig("xcsl-cio", base, backend=COMMON_IO_BACKEND, extra_env=env)
    process = airflow.launcher.start(config)
    try:
        process.wait_ready()
        yield process, base
    finally:
        process.close()


@pytest.mark.airflow
def test_coming_from_common_io(
    airflow: SharedAirflow,
    common_io_airflow: tuple[AirflowProcess, str],
    tmp_path: Path,
    raw: RawObjects,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer, base = common_io_airflow
    store = f"file://{tmp_path}/store"
    under_xcomstore = {"AIRFLOW__XCOMSTORE__PATH": store, "AIRFLOW__XCOMSTORE__COMMON_IO_PATH": base}

    # common-io writes: a path string in each large XCom's row, its object under its path.
    written = writer.dag_test(WRITER)
    assert written.state == "success", written.describe()
    paths = {task: written.value(task) for task in ("plain", "gzipped")}
    assert all(isinstance(p, str) and p.startswith(f"{base}/{WRITER}/") for p in paths.values()), paths
    assert paths["gzipped"].endswith(".gz")
    assert not Path(paths["plain"]).suffix  # a bare uuid4
    assert set(raw.files(base)) == set(paths.values())

    # xcomstore reads them from a task of another DAG run; lookalike strings stay strings.
    expected = {"plain": True, "plain_when_type": "datetime", "gzipped": True}
    expected |= {key: written.value("lookalike", key) for key in LOOKALIKES}
    read = airflow.process.dag_test(READER, env={**under_xcomstore, "XCS_CIO_RUN": written.run_id})
    assert read.state == "success", read.describe()
    assert read.value("pull") == expected

    # migrate, through the CLI as run by hand (common-io's own option names the path here)
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__PATH", store)
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__THRESHOLD", str(THRESHOLD))
    monkeypatch.setenv("AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH", base)
    migrate_cli = ["migrate", "--from-common-io", "--db-url", airflow.db_url, "--dag-id", WRITER, "--json"]
    planned = run_cli(capsys, *migrate_cli, "--dry-run").json()
    assert (planned["scanned"], len(planned["migrated"]), planned["other_strings"]) == (7, 2, 5), planned
    assert airflow.process.snapshot(written).xcoms == written.xcoms, "a dry run changed rows"
    assert set(raw.files(base)) == set(paths.values()), "a dry run changed objects"

    # A crash between writing xcomstore's object for the second XCom and rewriting its row.
    rows = _CrashingRows(airflow.db_url, crash_at=2)
    xcomstore = configured_store()
    legacy = common_io.configured(xcomstore.settings)
    assert legacy is not None
    with pytest.raises(_Crash):
        migrate(xcomstore, legacy, rows, dag_id=WRITER)
    half = airflow.process.snapshot(written)
    assert half.row("gzipped").is_reference
    assert raw.files(base) == [paths["plain"]]
    assert half.value("plain") == paths["plain"], "the crashed row must keep its path"

    resumed = run_cli(capsys, *migrate_cli).json()
    assert (len(resumed["migrated"]), resumed["already_references"]) == (1, 1), resumed
    assert resumed["common_io_objects_deleted"] == 1
    assert raw.files(base) == []
    again = run_cli(capsys, *migrate_cli).json()
    assert (again["migrated"], again["already_references"], again["other_strings"]) == ([], 2, 5), again
    done = airflow.process.snapshot(written)
    assert all(done.row(task).is_reference for task in ("plain", "gzipped"))

    # The migrated XComs read the same, from yet another run.
    reread = airflow.process.dag_test(READER, env={**under_xcomstore, "XCS_CIO_RUN": written.run_id})
    assert reread.value("pull") == expected, reread.describe()

    # purge: a rerun under xcomstore deletes common-io's object of the XCom it clears.
    second = writer.dag_test(WRITER)
    assert second.state == "success", second.describe()
    gzipped = second.value("gzipped")
    rerun = airflow.process.rerun(second, "gzipped", env=under_xcomstore)
    assert rerun.row("gzipped").is_reference, rerun.describe()
    assert not raw.exists(gzipped), "the rerun's purge left common-io's object"

    # gc: once the DAG is deleted, common-io's objects and xcomstore's are orphans.
    airflow.airflow("dags", "delete", WRITER, "--yes")
    gc = ["--path", store, "gc", "--db-url", airflow.db_url, "--grace", "0s", "--json"]
    found = run_cli(capsys, *gc, "--dry-run").json()
    assert found["removed"]["common-io orphan"]["objects"] == 1, found  # the second run's plain
    assert found["removed"]["orphan"]["objects"] == 3, found  # both migrated, the rerun's
    assert raw.files(base) == [second.value("plain")]
    run_cli(capsys, *gc)
    assert raw.files(base) == []
    assert raw.files(store) == []


class _Crash(BaseException):
    """The process dying: nothing catches it."""


class _CrashingRows(MetadataDbRows):
    """The real rows, but the process dies as it is about to rewrite the `crash_at`-th row."""

    def __init__(self, url: str, crash_at: int) -> None:
        super().__init__(url)
        self._left = crash_at

    def replace(self, row: XComRow, value: Any) -> bool:
        self._left -= 1
        if not self._left:
            raise _Crash
        return super().replace(row, value)
