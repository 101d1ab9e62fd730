"""One real Airflow (SQLite metadata DB) for tests/lifecycle and tests/faults, through the
integration harness: a long-lived runner process that runs dags/xcsl_store.py with dag.test().

The DB is migrated and the process warms up in a background thread as soon as a session holds a
test marked `airflow`, so the other tests run meanwhile. Each test points the backend at its own
store by passing AIRFLOW__XCOMSTORE__PATH with the command (the backend reads its settings at
every push and pull), so one process serves every test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# The harness is imported only when Airflow is needed, so that the other tests of these folders
# never depend on it.
if TYPE_CHECKING:
    from tests.integration.harness import AirflowLauncher, AirflowProcess, BackendConfig, RunResult

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "xcsl_store"
THRESHOLD = 1024
BIN = Path(sys.executable).parent  # the venv's airflow and xcomstore commands


@dataclass
class SharedAirflow:
    """The runner process, its DB file, and Airflow's CLI with the same configuration."""

    launcher: AirflowLauncher
    process: AirflowProcess

    @property
    def db_path(self) -> Path:
        return self.process.workdir / "airflow.db"  # where harness.SqliteDB.clone puts it

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def run(self, store_url: str, **env: str) -> RunResult:
        """A new run of xcsl_store, storing into `store_url`."""
        return self.process.dag_test(DAG_ID, env=_env(store_url, env))

    def rerun(self, run: RunResult, task_id: str, store_url: str, **env: str) -> RunResult:
        return self.process.rerun(run, task_id, env=_env(store_url, env))

    def cli_env(self) -> dict[str, str]:
        from tests.integration.harness import _hermetic_base_env

        return {
            **_hermetic_base_env(),
            "AIRFLOW_HOME": str(self.process.workdir / "home"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **self.process.config.env(),
        }

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`airflow ARGS` against this DB; fails the test with the output if it fails."""
        done = subprocess.run(
            [str(BIN / "airflow"), *args], env=self.cli_env(), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        return done


def _env(store_url: str, extra: dict[str, str]) -> dict[str, str]:
    return {"AIRFLOW__XCOMSTORE__PATH": store_url, **extra}


def _config(root: Path) -> BackendConfig:
    from tests.integration.harness import DAGS_FOLDER, BackendConfig

    extra = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        # The harness's runner imports the integration DAGs' shared module while warming up.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(DAGS_FOLDER), os.environ.get("PYTHONPATH")])),
    }
    return BackendConfig("xcsl", f"file://{root}/store-default", THRESHOLD, "zstd", extra)


class _Starter:
    """Builds the SharedAirflow on a thread; get() waits for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.result: SharedAirflow | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._build, name="xcsl-airflow", daemon=True)
        self.thread.start()

    def _build(self) -> None:
        try:
            from tests.integration.harness import AirflowLauncher

            launcher = AirflowLauncher(self.root)  # SQLite: BackendConfig.db defaults to it
            self.result = SharedAirflow(launcher, launcher.start(_config(self.root)))
        except BaseException as exc:
            self.error = exc

    def get(self) -> SharedAirflow:
        self.thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        self.result.process.wait_ready()
        return self.result


_state: dict[str, Any] = {}
_FOLDERS = (Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "faults")


def order_items(items: list[pytest.Item]) -> None:
    """Run the Airflow tests of these folders after their other tests, so that the process
    warms up meanwhile, and a test that deletes the metadata DB (module attribute
    DELETES_THE_AIRFLOW_DB) after all of them. Other tests keep their order."""

    def rank(item: pytest.Item) -> int:
        if not _needs_us(item):
            return 0
        return 2 if getattr(getattr(item, "module", None), "DELETES_THE_AIRFLOW_DB", False) else 1

    items.sort(key=rank)


def _needs_us(item: pytest.Item) -> bool:
    """An Airflow test of tests/lifecycle or tests/faults."""
    return bool(item.get_closest_marker("airflow")) and any(f in item.path.parents for f in _FOLDERS)


def start_early(request: pytest.FixtureRequest) -> None:
    """Start Airflow in the background if any selected test needs it (once per session)."""
    if "starter" in _state or not any(_needs_us(item) for item in request.session.items):
        return
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    _state["starter"] = _Starter(factory.mktemp("xcsl-airflow"))
    request.config.add_cleanup(close)


def shared(request: pytest.FixtureRequest) -> SharedAirflow:
    """The session's Airflow, started now if start_early did not."""
    if "starter" not in _state:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        _state["starter"] = _Starter(factory.mktemp("xcsl-airflow"))
        request.config.add_cleanup(close)
    airflow: SharedAirflow = _state["starter"].get()
    return airflow


def close() -> None:
    """Stop the process (a later shared() starts a new one, e.g. after a test deleted the DB)."""
    starter: _Starter | None = _state.pop("starter", None)
    if starter is None:
        return
    starter.thread.join()
    if starter.result is not None:
        starter.result.launcher.close()
