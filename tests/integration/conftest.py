"""Fixtures for the integration tests: Airflow processes per configuration, and store views.

A configuration (`Spec`) is a metadata DB kind, a store kind and the xcomstore settings. One
pytest run covers every combination in `SPECS`: the full value and lifecycle matrix on the
main DB (SQLite, or XCOMSTORE_TEST_DB=postgres|mysql) with file, S3, Azure Blob and GCS stores,
and a representative subset on PostgreSQL and MariaDB.

Every process the selected tests need starts before the first test, so their warm-ups (~7 s
of CPU each) overlap on the two cores; afterwards each DAG run is a command to a warm process
(about a second). A configuration whose DB or store server is missing makes its tests skip,
saying what is missing (with CI=true they fail instead).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    AIRFLOW_PYTHON_ENV,
    DAGS_FOLDER,
    DB_NAMES,
    PYTHON,
    XCOMSTORE_BACKEND,
    AirflowLauncher,
    AirflowProcess,
    BackendConfig,
    FileStoreView,
    ObjectStoreView,
    RunResult,
    StoreView,
    airflow_python_problem,
    airflow_version,
    db_problem,
)

# The DAGs' shared module (values and comparisons) is imported by the tests too.
sys.path.insert(0, str(DAGS_FOLDER))

THRESHOLD = 1024
# The DB of the full matrix (XCOMSTORE_TEST_DB); the PostgreSQL and MariaDB subsets run anyway.
MAIN_DB = os.environ.get("XCOMSTORE_TEST_DB", "sqlite").replace("mariadb", "mysql")
if MAIN_DB not in DB_NAMES:
    raise pytest.UsageError(f"XCOMSTORE_TEST_DB={MAIN_DB!r}: use sqlite, postgres or mysql (MariaDB)")
STORE_MARKS = {"s3": pytest.mark.s3, "azure": pytest.mark.azure, "gcs": pytest.mark.gcs}
DB_MARKS = {"postgres": pytest.mark.postgres, "mysql": pytest.mark.mariadb}


@dataclass(frozen=True)
class Spec:
    """One configuration of an Airflow process: where its metadata and its objects live."""

    name: str
    store: str = "file"  # file | s3 | azure | gcs
    db: str = MAIN_DB  # sqlite | postgres | mysql
    threshold: int | str = THRESHOLD
    compression: str = "zstd"
    extra_env: dict[str, str] = field(default_factory=dict)
    xcomstore: bool = True  # False: Airflow's default XCom backend, for contrast

    @property
    def marks(self) -> list[pytest.MarkDecorator]:
        marks = [STORE_MARKS[self.store]] if self.store in STORE_MARKS else []
        return marks + ([DB_MARKS[self.db]] if self.db in DB_MARKS else [])


SPECS = {
    spec.name: spec
    for spec in [
        # -- the main DB: every value, every lifecycle test --------------------------------------
        Spec("file-zstd"),
        # Threshold 0: everything but Airflow's internal keys is offloaded; runs the branch DAG.
        Spec("file-lz4-t0", threshold=0, compression="lz4"),
        Spec("file-gzip", compression="gzip"),
        Spec("s3-zstd", store="s3"),
        Spec("s3-none-t0", store="s3", threshold=0, compression="none"),
        Spec("azure-zstd", store="azure"),
        Spec("gcs-zstd", store="gcs"),
        # Invalid settings: each must stop the task (or Airflow) with a message naming it.
        Spec("bad-compression", compression="zip"),
        Spec("misspelled", extra_env={"AIRFLOW__XCOMSTORE__TRESHOLD": "5"}),
        Spec("bad-threshold", threshold="lots"),
        # -- the other DBs: a representative subset --------------------------------------------
        Spec("pg-file-zstd", db="postgres"),
        Spec("maria-file-zstd", db="mysql"),
        Spec("maria-default", db="mysql", xcomstore=False),
    ]
}

# Which configurations each kind of test runs on.
MAIN_STORES = ["file-zstd", "s3-zstd", "azure-zstd", "gcs-zstd"]  # one per store kind
OTHER_DBS = ["pg-file-zstd", "maria-file-zstd"]
TYPES_CONFIGS = ["file-zstd", "file-lz4-t0", "file-gzip", "s3-zstd", "s3-none-t0", "azure-zstd", "gcs-zstd"]
TYPES_CONFIGS += OTHER_DBS


def param(name: str, *values: Any, id: str | None = None) -> Any:
    """A pytest.param for configuration `name` (then `values`), marked by its store and DB kind."""
    values = values or (name,)
    return pytest.param(*values, id=id or name, marks=SPECS[name].marks)


def need(problem: str) -> None:
    """Skip, or under CI=true fail, because `problem` (what is missing) stops the test."""
    if os.environ.get("CI") == "true":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


# -- the subset run on every other supported Airflow (`-m compat`) ----------------------------
# scripts/test runs `pytest tests/integration -m compat` once per venv of
# scripts/setup-airflow-versions, with XCOMSTORE_AIRFLOW_PYTHON naming it. It covers what
# depends on Airflow's side of the XCom protocol, on SQLite: every kind of value, mapped tasks
# and multiple_outputs through a file and an S3 store and with threshold 0 (test_roundtrip),
# branching with Airflow's own keys under threshold 0 (test_branch), purge on a rerun of a
# task and of one map index, forged rows never purged, a copied row and a damaged object
# refused (test_lifecycle). Each test listed runs with the configurations given (the other
# stores, DBs and settings tests run on the main Airflow only); 25 s on 3.1.8 and 63 s on
# 3.2.2 (two cores, other work running).
COMPAT: dict[str, set[str]] = {
    # test_roundtrip.py: every test, on these configurations
    "test_roundtrip.py": {"file-zstd", "s3-zstd", "file-lz4-t0"},
    "test_branch_with_threshold_zero": {"file-lz4-t0"},
    "test_rerun_purges_the_old_objects": {"file-zstd", "s3-zstd"},
    "test_rerun_of_one_map_index_leaves_the_others": {"file-zstd"},
    "test_forged_reference_is_not_purged": {"file-zstd"},
    "test_reference_copied_from_another_xcom_is_refused": {"file-zstd"},
    "test_corrupted_object_is_detected": {"file-zstd", "s3-zstd"},
}
# Tests that name their configuration inside the test, not as a parameter.
COMPAT_UNPARAMETRIZED = {"test_summary_describes_a_dataframe"}


def _configs_of(item: pytest.Item) -> set[str]:
    callspec = getattr(item, "callspec", None)
    values = callspec.params.values() if callspec else []
    return {v for v in values if isinstance(v, str) and v in SPECS}


def _is_compat(item: pytest.Item) -> bool:
    if item.path.parent != Path(__file__).parent:
        return False
    name = getattr(item, "originalname", item.name)
    if name in COMPAT_UNPARAMETRIZED:
        return True
    allowed = COMPAT.get(name, COMPAT.get(item.path.name))
    configs = _configs_of(item)
    return allowed is not None and bool(configs) and configs <= allowed


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_compat(item):
            item.add_marker(pytest.mark.compat)


def pytest_report_header(config: pytest.Config) -> str:
    return f"Airflow processes: {PYTHON} (apache-airflow {airflow_version(PYTHON)})"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(AIRFLOW_PYTHON_ENV):
        problem = airflow_python_problem(PYTHON)
        if problem:
            raise pytest.UsageError(problem)
    config.addinivalue_line("markers", "postgres: runs on a PostgreSQL metadata DB (127.0.0.1:5432)")
    config.addinivalue_line("markers", "mariadb: runs on a MariaDB metadata DB (127.0.0.1:3306)")
    # Make the tests/servers fixtures (s3_server, ...) available here too, as that folder's own
    # conftest does for itself, unless a top-level conftest has registered them already.
    if not config.pluginmanager.has_plugin(SERVERS_PLUGIN):
        from servers import fixtures

        config.pluginmanager.register(fixtures, SERVERS_PLUGIN)


SERVERS_PLUGIN = "tests.servers.fixtures"  # the name tests/servers registers its fixtures under


@dataclass(frozen=True)
class Target:
    """One configured Airflow process and a direct view of its object store."""

    config: BackendConfig
    process: AirflowProcess
    store: StoreView

    @property
    def threshold(self) -> int:
        return int(self.config.threshold)


# -- object-store servers --------------------------------------------------------------------
@dataclass(frozen=True)
class StoreAccess:
    """One bucket on a running store server, and the Airflow connection that reaches it."""

    server: Any  # a tests/servers handle: S3Server, AzureServer or GcsServer
    conn_id: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """AIRFLOW_CONN_<ID>, as a user configures a connection in the environment."""
        return dict(self.server.airflow_env(self.conn_id))

    def path(self, name: str) -> str:
        return str(self.server.url(self.conn_id, self.bucket, f"xcs-{name}"))

    def view(self, root_uri: str) -> ObjectStoreView:
        import fsspec

        fs = fsspec.filesystem(
            self.server.protocol, skip_instance_cache=True, **self.server.storage_options()
        )
        return ObjectStoreView(fs, root_uri, self.server.create_bucket)


def _store_access(request: pytest.FixtureRequest, kind: str, server_fixture: str) -> StoreAccess:
    """One bucket for the session: the Airflow processes are configured once, with its name.

    (tests/servers' per-test buckets are too short-lived for a session's processes.)
    """
    from servers import azure, fixtures, gcs, s3

    checks = {"s3": s3.check_airflow_installed, "azure": azure.check_airflow_installed}
    fixtures.require(checks.get(kind, gcs.check_airflow_installed))
    server = request.getfixturevalue(server_fixture)
    bucket = server.create_bucket(fixtures.unique_name("xcs-it"))
    return StoreAccess(server=server, conn_id=f"xcs_{kind}", bucket=bucket)


@pytest.fixture(scope="session")
def s3_access(request: pytest.FixtureRequest) -> StoreAccess:
    return _store_access(request, "s3", "s3_server")


@pytest.fixture(scope="session")
def azure_access(request: pytest.FixtureRequest) -> StoreAccess:
    return _store_access(request, "azure", "azure_server")


@pytest.fixture(scope="session")
def gcs_access(request: pytest.FixtureRequest) -> StoreAccess:
    return _store_access(request, "gcs", "gcs_server")


# -- Airflow ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def airflow_launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowLauncher]:
    launcher = AirflowLauncher(tmp_path_factory.mktemp("airflow"))
    yield launcher
    launcher.close()


class TargetPool:
    """Starts each configuration's process on first use; skips those whose DB or store is missing."""

    def __init__(self, request: pytest.FixtureRequest, launcher: AirflowLauncher) -> None:
        self.request = request
        self.launcher = launcher
        self.targets: dict[str, Target] = {}
        self._db_problems: dict[str, str | None] = {}

    def db_problem(self, kind: str) -> str | None:
        if kind not in self._db_problems:
            self._db_problems[kind] = db_problem(kind)
        problem = self._db_problems[kind]
        return f"metadata DB: {problem}" if problem else None

    def get(self, name: str) -> Target:
        if name not in self.targets:
            self.targets[name] = self._start(SPECS[name])
        return self.targets[name]

    def start_all(self, names: list[str]) -> None:
        """Start every one of `names` that can run here, together (skips are raised later)."""
        kinds = {SPECS[n].db for n in names}
        self.launcher.prepare([k for k in kinds if self.db_problem(k) is None])
        for name in names:
            with contextlib.suppress(pytest.skip.Exception, pytest.fail.Exception):
                self.get(name)

    def _start(self, spec: Spec) -> Target:
        problem = self.db_problem(spec.db)
        if problem:
            need(problem)
        root = self.launcher.root
        view: StoreView
        if spec.store == "file":
            path = f"file://{root}/store-{spec.name}"
            Path(path[len("file://") :]).mkdir(parents=True, exist_ok=True)
            view, env = FileStoreView(Path(path[len("file://") :])), {}
        else:
            access: StoreAccess = self.request.getfixturevalue(f"{spec.store}_access")
            path = access.path(spec.name)
            view, env = access.view(path), access.env
        config = BackendConfig(
            spec.name,
            path,
            spec.threshold,
            spec.compression,
            {**env, **spec.extra_env},
            db=spec.db,
            backend=XCOMSTORE_BACKEND if spec.xcomstore else None,
        )
        return Target(config, self.launcher.start(config), view)


@pytest.fixture(scope="session")
def target_pool(request: pytest.FixtureRequest, airflow_launcher: AirflowLauncher) -> TargetPool:
    return TargetPool(request, airflow_launcher)


@pytest.fixture(scope="session", autouse=True)
def _start_early(request: pytest.FixtureRequest) -> None:
    """Start every process the selected tests need at once, before the first test.

    Once warm, the tests keep about one core busy; processes started now warm up on the other
    one instead of later on the critical path.
    """
    here = Path(__file__).parent
    names: dict[str, None] = {}
    for item in request.session.items:
        if here not in item.path.parents or not item.get_closest_marker("airflow"):
            continue
        callspec = getattr(item, "callspec", None)
        for value in callspec.params.values() if callspec else []:
            if isinstance(value, str) and value in SPECS:
                names[value] = None
    if names:
        pool: TargetPool = request.getfixturevalue("target_pool")
        pool.start_all(list(names))


@pytest.fixture(scope="session")
def all_targets(target_pool: TargetPool) -> Any:
    """Look a target up by name (starting it if no test started it yet)."""
    return target_pool.get


@pytest.fixture(scope="session")
def types_runs(target_pool: TargetPool) -> Any:
    """The xcs_types DAG run once per configuration (all started ones go in parallel)."""
    cache: dict[str, RunResult | BaseException] = {}

    def get(name: str) -> RunResult:
        if name not in cache:
            target_pool.get(name)
            names = [n for n in TYPES_CONFIGS if n in target_pool.targets and n not in cache]
            pending = {}
            for n in names:
                try:
                    pending[n] = target_pool.targets[n].process.submit("dag_test", dag_id="xcs_types", env={})
                except Exception as exc:
                    cache[n] = exc
            for n, answer in pending.items():
                try:
                    cache[n] = answer.result()
                except Exception as exc:
                    cache[n] = exc
        found = cache[name]
        if isinstance(found, BaseException):
            raise found
        return found

    return get


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """XComStoreBackend in this process, on a local folder (threshold 100 bytes): the SDK's
    read paths driven without a DAG run."""
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__PATH", f"file://{tmp_path}")
    monkeypatch.setenv("AIRFLOW__XCOMSTORE__THRESHOLD", "100")
    from xcomstore.airflow import backend

    return backend.XComStoreBackend
