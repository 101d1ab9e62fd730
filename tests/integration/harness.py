"""Run real DAGs in real Airflow 3 with the xcomstore backend, each config in its own process.

Why a process per configuration: Airflow reads its configuration (and resolves the XCom
backend) once per process, so a fresh interpreter is the only honest way to test a setting.
Why a *long-lived* process: warming up (imports, building the in-process execution API and
its routes) costs ~7 s of CPU per process, while a DAG run after that takes about a second. So each `AirflowProcess` is started once
(by a fixture), warms up in the background, and then serves many commands (run a DAG, clear and
re-run a task, forge an XCom row) sent as JSON lines to `runner.py`.

The metadata DB is migrated once per session and kind into a template and cloned for every
process: SQLite copies the file; PostgreSQL and MariaDB clone a template database. Each
configuration names its DB kind (`BackendConfig.db`), so one session runs on all three.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
DAGS_FOLDER = HERE / "dags"
RUNNER = HERE / "runner.py"
# The interpreter the Airflow processes (migrations, runners) run with. By default this one;
# XCOMSTORE_AIRFLOW_PYTHON names another venv's python, e.g. .venv-airflow-3.1/bin/python
# (scripts/setup-airflow-versions), to run the DAGs on another Airflow. pytest itself, the
# storage servers and the store views stay in this interpreter.
AIRFLOW_PYTHON_ENV = "XCOMSTORE_AIRFLOW_PYTHON"


def airflow_python() -> str:
    """The interpreter named by XCOMSTORE_AIRFLOW_PYTHON (absolute, not resolved), else this one.

    Not resolved: a venv's bin/python is often a symlink to the base interpreter, and only the
    venv's path finds the venv's packages and its `airflow` script next to it.
    """
    named = os.environ.get(AIRFLOW_PYTHON_ENV, "").strip()
    return os.path.abspath(named) if named else sys.executable


def airflow_python_problem(python: str) -> str | None:
    """Why `python` cannot run the Airflow processes, or None."""
    if not os.access(python, os.X_OK):
        return f"{AIRFLOW_PYTHON_ENV}={python}: no such executable (scripts/setup-airflow-versions creates the venvs)"
    if not Path(python).with_name("airflow").exists():
        return f"{AIRFLOW_PYTHON_ENV}={python}: no `airflow` script next to it (is Airflow installed in that venv?)"
    return None


def airflow_version(python: str) -> str:
    """The apache-airflow version installed for `python` (asked in a subprocess, ~50 ms)."""
    done = subprocess.run(
        [python, "-c", "from importlib.metadata import version; print(version('apache-airflow'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else f"unknown ({done.stderr.strip()[-200:]})"


PYTHON = airflow_python()
REF_TAG = "__xcomstore__"
MARKER = "@@xcs-runner@@"  # brackets each command's output in the runner log
XCOMSTORE_BACKEND = "xcomstore.XComStoreBackend"
# Generous: a DAG run on a cold, busy 2-core machine; a hang must still end the test.
COMMAND_TIMEOUT = 300.0
STARTUP_TIMEOUT = 300.0


def is_reference(value: Any) -> bool:
    return isinstance(value, dict) and REF_TAG in value


# --------------------------------------------------------------------------------------------
# Metadata databases
# --------------------------------------------------------------------------------------------
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
MYSQL_HOST, MYSQL_PORT, MYSQL_USER = "127.0.0.1", 3306, "root"
DB_KINDS = ("sqlite", "postgres", "mysql")
DB_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "mysql": "MariaDB"}


class MetadataDB(Protocol):
    """A metadata DB kind: migrated once per session, cloned once per Airflow process."""

    kind: str

    def template_conn(self) -> str: ...

    def clone(self, name: str, workdir: Path) -> str:
        """A fresh copy of the migrated template; returns its SQLAlchemy URL."""
        ...

    def drop_all(self) -> None: ...


class SqliteDB:
    kind = "sqlite"

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.template = root / "template.db"

    def template_conn(self) -> str:
        return f"sqlite:///{self.template}"

    def clone(self, name: str, workdir: Path) -> str:
        target = workdir / "airflow.db"
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def drop_all(self) -> None:
        """Nothing to do: the files live in pytest's temporary directory."""


class PostgresDB:
    """One template database per session; clones are `CREATE DATABASE ... TEMPLATE` (fast)."""

    kind = "postgres"
    server = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}"

    def __init__(self) -> None:
        self.prefix = f"xcs_{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []
        self._create(f"{self.prefix}_tmpl", template=None)

    def _admin(self, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
        conn.autocommit = True  # CREATE/DROP DATABASE refuse to run inside a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def _create(self, name: str, template: str | None) -> None:
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.names.append(name)

    def template_conn(self) -> str:
        return f"{self.server}/{self.prefix}_tmpl"

    def clone(self, name: str, workdir: Path) -> str:
        clone = f"{self.prefix}_{name}"
        self._create(clone, template=f"{self.prefix}_tmpl")
        return f"{self.server}/{clone}"

    def drop_all(self) -> None:
        for name in reversed(self.names):
            with contextlib.suppress(Exception):
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MariaDB:
    """One template database per session; MariaDB has no TEMPLATE, so clones are a dump+load."""

    kind = "mysql"
    server = f"mysql+mysqldb://{MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT}"
    _client = ("-h", MYSQL_HOST, "-P", str(MYSQL_PORT), f"-u{MYSQL_USER}")

    def __init__(self) -> None:
        self.prefix = f"xcs_{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []
        self._create(f"{self.prefix}_tmpl")

    def _sql(self, sql: str) -> None:
        subprocess.run(["mysql", *self._client, "-e", sql], check=True, capture_output=True)

    def _create(self, name: str) -> None:
        self._sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.names.append(name)

    def template_conn(self) -> str:
        return f"{self.server}/{self.prefix}_tmpl"

    def clone(self, name: str, workdir: Path) -> str:
        clone = f"{self.prefix}_{name}"
        self._create(clone)
        dump = subprocess.run(
            ["mysqldump", *self._client, "--single-transaction", f"{self.prefix}_tmpl"],
            check=True,
            capture_output=True,
        )
        subprocess.run(["mysql", *self._client, clone], input=dump.stdout, check=True)
        return f"{self.server}/{clone}"

    def drop_all(self) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):
                self._sql(f"DROP DATABASE IF EXISTS `{name}`")


def db_problem(kind: str) -> str | None:
    """Why metadata DB `kind` cannot be used on this machine (None: it can)."""
    if kind == "sqlite":
        return None
    if kind == "postgres":
        modules, hint = ("psycopg2", "asyncpg"), "pip install psycopg2-binary asyncpg"
        where = f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}, trust auth)"
    elif kind == "mysql":
        modules, hint = ("MySQLdb", "aiomysql"), "pip install mysqlclient aiomysql (needs libmariadb-dev)"
        where = f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT} (user {MYSQL_USER}, no password)"
    else:
        return f"unknown metadata DB kind {kind!r}: use one of {', '.join(DB_KINDS)}"
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        return f"{where}: missing Python modules {', '.join(missing)} ({hint})"
    if kind == "mysql":
        tools = [t for t in ("mysql", "mysqldump") if shutil.which(t) is None]
        if tools:
            return f"{where}: the client programs {', '.join(tools)} are not on PATH (apt-get install mariadb-client)"
    try:
        if kind == "postgres":
            import psycopg2

            psycopg2.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5
            ).close()
        else:
            import MySQLdb

            MySQLdb.connect(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, connect_timeout=5).close()
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{where} is not reachable: {first_line}"
    return None


def make_db(kind: str, root: Path) -> MetadataDB:
    if kind == "sqlite":
        return SqliteDB(root)
    if kind == "postgres":
        return PostgresDB()
    if kind in ("mysql", "mariadb"):
        return MariaDB()
    raise ValueError(f"metadata DB kind {kind!r}: use sqlite, postgres or mysql")


# --------------------------------------------------------------------------------------------
# Configuration of one Airflow process
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackendConfig:
    """The xcomstore settings (and any extra env) one Airflow process runs with."""

    name: str  # short, unique per session: names the home, the DB clone and the store
    path: str
    threshold: int | str = 1024
    compression: str = "zstd"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    db: str = "sqlite"  # the metadata DB kind: sqlite | postgres | mysql
    backend: str | None = XCOMSTORE_BACKEND  # None: Airflow's default XCom backend

    def env(self) -> dict[str, str]:
        if self.backend is None:
            return {**self.extra_env}
        return {
            "AIRFLOW__CORE__XCOM_BACKEND": self.backend,
            "AIRFLOW__XCOMSTORE__PATH": self.path,
            "AIRFLOW__XCOMSTORE__THRESHOLD": str(self.threshold),
            "AIRFLOW__XCOMSTORE__COMPRESSION": self.compression,
            **self.extra_env,
        }


def _hermetic_base_env() -> dict[str, str]:
    """The parent's env minus anything Airflow-ish that could leak into the child's config."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "_AIRFLOW", "XCS_")) and k != "PYTEST_CURRENT_TEST"
    }


class AirflowLauncher:
    """Owns the session's migrated template homes (one per DB kind) and starts Airflow processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[str, MetadataDB] = {}
        self.processes: list[AirflowProcess] = []

    def template_home(self, kind: str) -> Path:
        return self.root / f"template-{kind}"

    def prepare(self, kinds: list[str]) -> None:
        """Create and migrate the template DB of each kind not prepared yet (in parallel)."""
        todo = [k for k in dict.fromkeys(kinds) if k not in self.dbs]
        if not todo:
            return
        with concurrent.futures.ThreadPoolExecutor(len(todo)) as pool:
            made = dict(zip(todo, pool.map(self._make_and_migrate, todo), strict=True))
        self.dbs.update(made)

    def _make_and_migrate(self, kind: str) -> MetadataDB:
        db = make_db(kind, self.root / f"db-{kind}")
        try:
            self._migrate(db, self.template_home(kind))
        except BaseException:
            db.drop_all()
            raise
        return db

    @staticmethod
    def _migrate(db: MetadataDB, home: Path) -> None:
        env = {
            **_hermetic_base_env(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.template_conn(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        }
        airflow = Path(PYTHON).with_name("airflow")
        done = subprocess.run(
            [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate ({db.kind}) failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )

    def start(self, config: BackendConfig) -> AirflowProcess:
        """Start (not wait for) a warmed-up Airflow process for `config`."""
        self.prepare([config.db])
        workdir = self.root / config.name
        home = workdir / "home"
        shutil.copytree(self.template_home(config.db), home, ignore=shutil.ignore_patterns("*.db", "logs"))
        conn = self.dbs[config.db].clone(config.name.replace("-", "_"), workdir)
        env = {
            **_hermetic_base_env(),
            "AIRFLOW_HOME": str(home),
            # airflow.cfg still names the template's DB and dags folder: override both.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONUNBUFFERED": "1",  # log offsets must match the order of commands
            "XCS_REPORT_DIR": str(workdir / "reports"),
            **config.env(),
        }
        process = AirflowProcess(config, workdir, env)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            process.close()
        for db in self.dbs.values():
            db.drop_all()


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TI:
    task_id: str
    map_index: int
    state: str | None
    try_number: int


@dataclass(frozen=True)
class XComRow:
    task_id: str
    map_index: int
    key: str
    value: Any  # exactly as stored in the DB's JSON column

    @property
    def is_reference(self) -> bool:
        return is_reference(self.value)


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")


@dataclass(frozen=True)
class RunResult:
    """A DAG run as the metadata DB holds it after a command, plus the command's log."""

    dag_id: str
    run_id: str
    state: str | None
    tis: list[TI]
    xcoms: list[XComRow]
    reports: dict[str, Any]  # written by the DAG's checking tasks, see dags/xcs_common.py
    log: str

    @classmethod
    def from_json(cls, data: dict[str, Any], log: str) -> RunResult:
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            state=data["state"],
            tis=[TI(**t) for t in data["tis"]],
            xcoms=[XComRow(**x) for x in data["xcoms"]],
            reports=data["reports"],
            log=log,
        )

    def ti(self, task_id: str, map_index: int = -1) -> TI:
        for ti in self.tis:
            if (ti.task_id, ti.map_index) == (task_id, map_index):
                return ti
        raise KeyError(f"no task instance {task_id}[{map_index}] in {self.run_id}")

    def state_of(self, task_id: str, map_index: int = -1) -> str | None:
        return self.ti(task_id, map_index).state

    def row(self, task_id: str, key: str = "return_value", map_index: int = -1) -> XComRow:
        for row in self.xcoms:
            if (row.task_id, row.key, row.map_index) == (task_id, key, map_index):
                return row
        raise KeyError(f"no XCom {task_id}[{map_index}]/{key} in {self.run_id}")

    def value(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.row(task_id, key, map_index).value

    def has_row(self, task_id: str, key: str = "return_value", map_index: int = -1) -> bool:
        return any((r.task_id, r.key, r.map_index) == (task_id, key, map_index) for r in self.xcoms)

    def references(self) -> list[XComRow]:
        return [row for row in self.xcoms if row.is_reference]

    def task_log(self, task_id: str, map_index: int = -1) -> str:
        """The log lines of this command that belong to one task instance (all its attempts)."""
        chunks: list[str] = []
        current: tuple[str, int] | None = None
        for line in self.log.splitlines():
            match = _TASK_START.search(line)
            if match:
                current = (match.group(1), int(match.group(2)))
            if current == (task_id, map_index):
                chunks.append(line)
        return "\n".join(chunks)

    def failure(self, task_id: str, map_index: int = -1) -> str:
        """The exception lines of the task's last traceback (what a user would read first)."""
        return last_exception(self.task_log(task_id, map_index))

    def describe(self) -> str:
        """A compact summary for assertion messages."""
        states = ", ".join(f"{t.task_id}[{t.map_index}]={t.state}" for t in self.tis)
        failed = [t for t in self.tis if t.state in ("failed", "upstream_failed")]
        details = "".join(
            f"\n  {t.task_id}[{t.map_index}]: {self.failure(t.task_id, t.map_index)[:600]}" for t in failed
        )
        return f"{self.dag_id} {self.run_id}: {states}{details}"


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)?): ?(.*)$")
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def last_exception(log: str) -> str:
    """The final 'SomeError: message' block after the last traceback in `log` ('' if none)."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if not starts:
        return ""
    tail = lines[starts[-1] :]
    found: list[str] = []
    for line in tail:
        if _LOG_LINE.match(line):
            if found:
                break
            continue
        if found or (_EXC_LINE.match(line) and not line.startswith(" ")):
            # Chained tracebacks repeat: keep only the last exception block.
            if line.startswith(("Traceback (most recent call", "The above exception", "During handling")):
                found = []
                continue
            found.append(line)
    return "\n".join(found).strip()


# --------------------------------------------------------------------------------------------
# One Airflow process
# --------------------------------------------------------------------------------------------
class AirflowProcessDied(RuntimeError):
    """The runner exited (e.g. Airflow refused to start); `log` holds everything it printed."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(f"{message}\n--- runner log (tail) ---\n{log[-4000:]}")
        self.log = log


class Pending:
    """A command sent to a runner whose answer has not been read yet."""

    def __init__(self, process: AirflowProcess, op: str, number: int) -> None:
        self.process, self.op, self.number = process, op, number
        self.answer: Any = None
        self.error: BaseException | None = None
        self.done = False

    def result(self) -> Any:
        self.process._receive_until(self)
        if self.error is not None:
            raise self.error
        return self.answer


class AirflowProcess:
    """A runner subprocess with one fixed configuration, driven by JSON-line commands.

    Commands are answered in order on a private pipe (stdout belongs to Airflow's logs). The
    runner brackets each command's log with markers, so commands may be pipelined.
    """

    def __init__(self, config: BackendConfig, workdir: Path, env: dict[str, str]) -> None:
        self.config = config
        self.workdir = workdir
        self.log_path = workdir / "runner.log"
        read_fd, write_fd = os.pipe()
        self._results = os.fdopen(read_fd, "rb", buffering=0)
        self._buffer = b""
        self._queue: list[Pending] = []
        self._numbers = itertools.count(1)
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [PYTHON, str(RUNNER)],
                env={**env, "XCS_RESULT_FD": str(write_fd)},
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                cwd=workdir,
            )
        os.close(write_fd)  # only the child writes: EOF on our end then means it died
        self._ready = Pending(self, "startup", 0)  # the runner's first answer, unasked
        self._queue.append(self._ready)

    # -- protocol --------------------------------------------------------------------------
    def submit(self, op: str, **args: Any) -> Pending:
        """Send a command without waiting; call .result() on the answer later."""
        pending = Pending(self, op, next(self._numbers))
        line = json.dumps({"op": op, "args": args, "n": pending.number}) + "\n"
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(line.encode())
            self.popen.stdin.flush()
        except BrokenPipeError:
            self.wait_ready()  # raises with the start-up log if that is what went wrong
            raise AirflowProcessDied(f"runner {self.config.name} is gone", self.read_log()) from None
        self._queue.append(pending)
        return pending

    def call(self, op: str, **args: Any) -> Any:
        return self.submit(op, **args).result()

    def wait_ready(self) -> float:
        """Block until the runner has imported Airflow and built the execution API."""
        return float(self._ready.result()["seconds"])

    def _receive_until(self, target: Pending) -> None:
        while not target.done:
            head = self._queue.pop(0)
            try:
                head.answer = self._read_answer(head)
            except (AirflowProcessDied, RuntimeError, TimeoutError) as exc:
                head.error = exc
            head.done = True

    def _read_answer(self, pending: Pending) -> Any:
        line = self._read_line(pending.op)
        log = self.command_log(pending.number)
        if line is None:
            raise AirflowProcessDied(f"runner {self.config.name} exited during {pending.op!r}", log)
        answer = json.loads(line)
        if not answer["ok"] and pending.op == "startup":
            raise AirflowProcessDied(f"runner {self.config.name} could not start Airflow", log)
        if not answer["ok"]:
            raise RuntimeError(f"runner {self.config.name}: {pending.op!r} raised:\n{answer['error']}")
        result = answer["result"]
        if isinstance(result, dict) and "run_id" in result and "tis" in result:
            return RunResult.from_json(result, log)
        return result

    def _read_line(self, op: str) -> str | None:
        timeout = STARTUP_TIMEOUT if op == "startup" else COMMAND_TIMEOUT
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"runner {self.config.name}: no answer to {op!r} in {timeout}s")
            ready, _, _ = select.select([self._results], [], [], min(remaining, 1.0))
            if ready:
                chunk = self._results.read(65536)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def command_log(self, number: int) -> str:
        """What the runner printed while executing command `number` (0: start-up)."""
        text = self.read_log()
        begin = text.find(f"{MARKER} begin {number}\n") if number else 0
        end = text.find(f"{MARKER} end {number}\n")
        return text[max(begin, 0) : end if end >= 0 else len(text)]

    def close(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(Exception):
                self.submit("exit")
                self.popen.wait(timeout=20)
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        if self.popen.stdin:
            with contextlib.suppress(BrokenPipeError):
                self.popen.stdin.close()
        self._results.close()

    # -- commands --------------------------------------------------------------------------
    def dag_test(self, dag_id: str, env: Mapping[str, str] | None = None) -> RunResult:
        """Run the DAG once with `dag.test()` (a new run) and return what the DB holds."""
        return self.call("dag_test", dag_id=dag_id, env=dict(env or {}))  # type: ignore[no-any-return]

    def rerun(
        self,
        run: RunResult,
        task_id: str,
        map_index: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunResult:
        """Clear one task (all its map indexes unless given) and run it again in the same run."""
        return self.call(  # type: ignore[no-any-return]
            "rerun",
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=task_id,
            map_index=map_index,
            env=dict(env or {}),
        )

    def set_xcom(
        self, run: RunResult, task_id: str, value: Any, key: str = "return_value", map_index: int = -1
    ) -> None:
        """Overwrite an XCom row's stored value, as the REST API's PATCH would."""
        self.call(
            "set_xcom",
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=task_id,
            key=key,
            map_index=map_index,
            value=value,
        )

    def snapshot(self, run: RunResult) -> RunResult:
        return self.call("snapshot", dag_id=run.dag_id, run_id=run.run_id)  # type: ignore[no-any-return]

    def row_sizes(self, run: RunResult) -> dict[tuple[str, int, str], int]:
        """Bytes of each XCom row's value as the metadata DB stores it: (task, map, key) -> size."""
        rows = self.call("row_sizes", dag_id=run.dag_id, run_id=run.run_id)
        return {(r["task_id"], r["map_index"], r["key"]): r["bytes"] for r in rows}

    def default_forms(self, names: list[str]) -> dict[str, Any]:
        """How Airflow's default backend would store the named values of dags/xcs_common.py."""
        return self.call("default_forms", names=names)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Looking at the object store from the test process
# --------------------------------------------------------------------------------------------
class StoreView(Protocol):
    """Direct access to the objects behind references, bypassing xcomstore."""

    root_uri: str

    def key(self, uri: str) -> str: ...
    def read(self, uri: str) -> bytes: ...
    def write(self, uri: str, data: bytes) -> None: ...
    def delete(self, uri: str) -> None: ...
    def exists(self, uri: str) -> bool: ...
    def objects(self, under: str | None = None) -> set[str]:
        """Keys of every object (below `under`, a uri), in the form returned by key()."""
        ...

    def ensure_bucket(self, name: str) -> None: ...


class FileStoreView:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_uri = f"file://{root}"

    def key(self, uri: str) -> str:
        """The local path a file:// uri names, with '..' left as written (no normalising)."""
        assert uri.startswith("file://"), uri
        return uri[len("file://") :]

    def read(self, uri: str) -> bytes:
        return Path(self.key(uri)).read_bytes()

    def write(self, uri: str, data: bytes) -> None:
        path = Path(self.key(uri))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, uri: str) -> None:
        Path(self.key(uri)).unlink()

    def exists(self, uri: str) -> bool:
        return Path(self.key(uri)).exists()

    def objects(self, under: str | None = None) -> set[str]:
        base = Path(self.key(under)) if under else self.root
        if not base.exists():
            return set()
        return {str(p) for p in base.rglob("*") if p.is_file()}

    def ensure_bucket(self, name: str) -> None:
        """Local files have no buckets."""


class ObjectStoreView:
    """An object store (S3, Azure Blob, GCS) through its fsspec filesystem.

    Uris carry the Airflow connection id as user (`s3://conn@bucket/...`, `abfs://conn@container/...`,
    `gs://conn@bucket/...`); keys are `bucket/path`, as fsspec names objects.
    """

    def __init__(self, fs: Any, root_uri: str, make_bucket: Any) -> None:
        self.fs = fs
        self.root_uri = root_uri
        self.scheme = root_uri.partition("://")[0]
        self._make_bucket = make_bucket

    def key(self, uri: str) -> str:
        prefix = f"{self.scheme}://"
        assert uri.startswith(prefix), uri
        bucket, _, path = uri[len(prefix) :].partition("/")
        return f"{bucket.rpartition('@')[2]}/{path}"

    def read(self, uri: str) -> bytes:
        self.fs.invalidate_cache()
        return bytes(self.fs.cat_file(self.key(uri)))

    def write(self, uri: str, data: bytes) -> None:
        self.fs.pipe_file(self.key(uri), data)
        self.fs.invalidate_cache()

    def delete(self, uri: str) -> None:
        self.fs.rm_file(self.key(uri))
        self.fs.invalidate_cache()

    def exists(self, uri: str) -> bool:
        self.fs.invalidate_cache()
        return bool(self.fs.exists(self.key(uri)))

    def objects(self, under: str | None = None) -> set[str]:
        self.fs.invalidate_cache()
        base = self.key(under or self.root_uri).rstrip("/")
        try:
            return set(self.fs.find(base))
        except FileNotFoundError:
            return set()

    def ensure_bucket(self, name: str) -> None:
        """Create bucket (container) `name` unless it exists."""
        if not self.fs.exists(name):
            self._make_bucket(name)
        self.fs.invalidate_cache()


def run_dir(uri: str) -> str:
    """The folder of one DAG run in a reference uri: <path>/<dag>/<run>/<task>/<map>/<key>.xcs."""
    return uri.rsplit("/", 3)[0]


def flip_byte(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]
