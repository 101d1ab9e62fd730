"""A real Airflow 3 deployment with xcomstore, started from scratch for a test module.

`Deployment.start()` runs `airflow db migrate` into a fresh PostgreSQL database, then starts
`airflow api-server`, `airflow dag-processor`, `airflow scheduler` and, with the
CeleryExecutor, `airflow celery worker`, each as its own process (own process group) logging
to a file in the deployment's folder. `stop()` terminates them (then kills what lingers) and
drops the database. Tests drive it as a user would: the REST API triggers runs, the CLI clears
tasks and creates backfills, and the metadata DB and the store are read directly to compare
references with objects.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAGS_FOLDER = HERE / "dags"
PYTHON = sys.executable
AIRFLOW = str(Path(PYTHON).with_name("airflow"))
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_URL = os.environ.get("XCOMSTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
REF_TAG = "__xcomstore__"
USER, PASSWORD = "admin", "xcsd-admin-secret"
STARTUP_TIMEOUT = 180.0  # every component cold-starting at once on a busy 2-core machine
TERMINATE_GRACE = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 25, width: int = 400) -> str:
    """The last `lines` lines of a log, each cut to `width` characters."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not written)"
    return "\n".join(
        line if len(line) <= width else line[:width] + " …" for line in text.splitlines()[-lines:]
    )


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------
@dataclass
class Component:
    """One long-running Airflow command in its own process group, logging to a file."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: Mapping[str, str], cwd: Path) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its group holds its workers: stop() reaches them all
            )
        atexit.register(self.stop)  # even if a fixture's teardown never runs

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM to the whole group, then SIGKILL to whatever is left after the grace period."""
        popen = self.popen
        if popen is None:
            return
        if popen.poll() is None:
            _signal_group(popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(TERMINATE_GRACE)
        # The leader may be gone while its children (task processes, pool workers) linger.
        _signal_group(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(10)

    def describe(self) -> str:
        state = "running" if self.running else f"exited with {self.popen.returncode if self.popen else '?'}"
        return f"--- {self.name} ({state}), {self.log} (tail) ---\n{tail(self.log)}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# --------------------------------------------------------------------------------------------
# Stores: listing objects to compare with the references in the DB
# --------------------------------------------------------------------------------------------
class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = f"file://{root}"
        root.mkdir(parents=True, exist_ok=True)

    def key(self, uri: str) -> str:
        assert uri.startswith("file://"), uri
        return uri[len("file://") :]

    def objects(self, under: str) -> set[str]:
        base = Path(self.key(under))
        return {str(p) for p in base.rglob("*") if p.is_file()} if base.exists() else set()


class S3Store:
    def __init__(self, fs: Any, uri: str) -> None:
        self.fs = fs
        self.uri = uri  # s3://conn@bucket/xcom

    def key(self, uri: str) -> str:
        assert uri.startswith("s3://"), uri
        bucket, _, path = uri[len("s3://") :].partition("/")
        return f"{bucket.rpartition('@')[2]}/{path}"

    def objects(self, under: str) -> set[str]:
        self.fs.invalidate_cache()
        try:
            return set(self.fs.find(self.key(under).rstrip("/")))
        except FileNotFoundError:
            return set()


# --------------------------------------------------------------------------------------------
# The deployment
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    dag_id: str
    run_id: str


@dataclass
class Deployment:
    kind: str  # "local" | "celery"
    home: Path
    store: Any  # FileStore | S3Store
    extra_env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 8  # LocalExecutor parallelism, Celery worker concurrency
    components: list[Component] = field(default_factory=list)
    db_name: str = ""
    port: int = 0
    log_port: int = 0
    _token: str | None = None

    # -- set-up ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        base.pop("PYTEST_CURRENT_TEST", None)
        url = f"http://127.0.0.1:{self.port}"
        env = {
            **base,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url("postgresql+psycopg2"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor" if self.kind == "celery" else "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
            "AIRFLOW__CORE__FERNET_KEY": "",
            # The log server of this deployment's workers/scheduler: never the default 8793,
            # which another Airflow on the machine may hold.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_port),
            # Pick up new runs and finished tasks quickly.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__CORE__XCOM_BACKEND": "xcomstore.XComStoreBackend",
            "AIRFLOW__XCOMSTORE__PATH": self.store.uri,
            "AIRFLOW__XCOMSTORE__THRESHOLD": "1024",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        if self.kind == "celery":
            env |= {
                "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                "AIRFLOW__CELERY__RESULT_BACKEND": self.db_url("db+postgresql+psycopg2"),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.parallelism),
                # A queue of its own: another Airflow using the same Redis never takes its tasks.
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            }
        return env

    def _secret(self, what: str) -> str:
        path = self.home / f".{what}-secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text()

    def db_url(self, driver: str) -> str:
        return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.db_name}"

    def start(self) -> None:
        """Migrate a new DB and start every component; returns once the API answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.db_name = f"xcsd_{self.kind}_{secrets.token_hex(4)}"
        self.port, self.log_port = free_port(), free_port()
        (self.home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
        _pg_admin(f'CREATE DATABASE "{self.db_name}"')
        atexit.register(self.stop)  # drops the DB even if the fixture's teardown never runs
        env = self.env()
        migrate_log = self.home / "db-migrate.log"
        with migrate_log.open("wb") as out:
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"],
                env=env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{tail(migrate_log)}")
        commands = {
            "api-server": [
                AIRFLOW,
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            "dag-processor": [AIRFLOW, "dag-processor"],
            "scheduler": [AIRFLOW, "scheduler"],
        }
        if self.kind == "celery":
            commands["celery-worker"] = [
                AIRFLOW, "celery", "worker",
                "--queues", env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
                "--concurrency", str(self.parallelism),
                "--celery-hostname", f"{self.db_name}@%h",
                "--skip-serve-logs", "--without-mingle", "--without-gossip",
            ]  # fmt: skip
        for name, argv in commands.items():
            component = Component(name, argv, self.home / f"{name}.log")
            self.components.append(component)
            component.start(env, self.home)
        self._wait_until(self._api_answers, STARTUP_TIMEOUT, "the API server to answer")

    @property
    def queue(self) -> str:
        """The Celery queue of this deployment alone."""
        return f"xcsd-{self.db_name}"

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()
        if self.db_name:
            with contextlib.suppress(Exception):
                _pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        if self.kind == "celery" and self.db_name:
            with contextlib.suppress(Exception):
                import redis

                client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
                for key in list(client.scan_iter(match=f"*{self.queue}*")):
                    client.delete(key)

    def _api_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=5):
                return True
        except (OSError, urllib.error.URLError):
            return False

    def _wait_until(self, check: Callable[[], Any], timeout: float, what: str, poll: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            dead = [c for c in self.components if not c.running]
            if dead:
                raise AssertionError(f"{dead[0].name} died while waiting for {what}\n{self.logs()}")
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")
            time.sleep(poll)

    # -- diagnostics -------------------------------------------------------------------------
    def logs(self, names: Iterable[str] | None = None) -> str:
        chosen = [c for c in self.components if names is None or c.name in names]
        return "\n".join(c.describe() for c in chosen)

    def task_log_folder(self, run: Run, task_id: str, map_index: int = -1) -> Path:
        folder = self.home / "logs" / f"dag_id={run.dag_id}" / f"run_id={run.run_id}" / f"task_id={task_id}"
        return folder / f"map_index={map_index}" if map_index >= 0 else folder

    def task_log_text(self, run: Run, task_id: str, attempt: int, map_index: int = -1) -> str:
        path = self.task_log_folder(run, task_id, map_index) / f"attempt={attempt}.log"
        return path.read_text(errors="replace") if path.exists() else f"({path} not written)"

    def task_logs(
        self, run: Run, states: Iterable[str] = ("failed", "upstream_failed", "up_for_retry")
    ) -> str:
        """The tail of each listed task instance's own log (the last attempt)."""
        chunks = []
        for ti in self.task_instances(run):
            if ti["state"] not in states:
                continue
            folder = self.task_log_folder(run, ti["task_id"], ti["map_index"])
            attempts = sorted(folder.glob("attempt=*.log"))
            text = tail(attempts[-1], 25) if attempts else f"(no log in {folder})"
            chunks.append(f"--- task {ti['task_id']}[{ti['map_index']}] {ti['state']} ---\n{text}")
            if len(chunks) >= 3:
                break
        return "\n".join(chunks)

    def explain(self, run: Run) -> str:
        """Everything useful for an assertion message about `run`."""
        states = self.task_states(run)
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))
        return (
            f"{run.dag_id} {run.run_id}: run {self.run_state(run)}; tasks {summary}\n"
            f"{self.task_logs(run)}\n{self.logs()}"
        )

    # -- REST API ----------------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": USER, "password": PASSWORD}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/auth/token",
                body,
                {"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = str(json.load(response)["access_token"])
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                return exc.code, json.loads(text)
            return exc.code, text

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Until the DAG processor has parsed each DAG (and the API serves it)."""
        wanted = set(dag_ids)

        def parsed() -> bool:
            return all(self.api("GET", f"/api/v2/dags/{d}")[0] == 200 for d in wanted)

        self._wait_until(parsed, timeout, f"the DAG processor to parse {sorted(wanted)}")

    def trigger(
        self, dag_id: str, logical_date: str | None = None, conf: Mapping[str, Any] | None = None
    ) -> Run:
        body = {"logical_date": logical_date, "conf": dict(conf or {})}
        status, answer = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
        if status != 200:
            raise AssertionError(
                f"triggering {dag_id} answered {status}: {answer}\n{self.logs(['api-server'])}"
            )
        return Run(dag_id, answer["dag_run_id"])

    # -- CLI ---------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 120.0) -> str:
        """Run `airflow <args>` with the deployment's configuration; fail with its output."""
        done = subprocess.run(
            [AIRFLOW, *args],
            env=self.env(),
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = done.stdout + done.stderr
        with (self.home / "cli.log").open("a") as log:
            log.write(f"$ airflow {' '.join(args)}\n{output}\n")
        if done.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited with {done.returncode}:\n{output[-4000:]}")
        return output

    # -- the metadata DB ---------------------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.db_name)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def run_state(self, run: Run) -> str | None:
        rows = self.query(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", run.dag_id, run.run_id
        )
        return rows[0][0] if rows else None

    def task_instances(self, run: Run) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT task_id, map_index, state, try_number FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            run.dag_id,
            run.run_id,
        )
        return [{"task_id": t, "map_index": m, "state": s, "try_number": n} for t, m, s, n in rows]

    def task_states(self, run: Run) -> dict[str, int]:
        """How many task instances are in each (task, state): {'push=success': 200, ...}."""
        counts: dict[str, int] = {}
        for ti in self.task_instances(run):
            label = f"{ti['task_id']}={ti['state']}"
            counts[label] = counts.get(label, 0) + 1
        return counts

    def xcoms(self, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """The XCom rows of a run (or of every run of the DAG), values as stored (JSONB)."""
        sql = "SELECT run_id, task_id, map_index, key, value FROM xcom WHERE dag_id = %s"
        params: list[Any] = [dag_id]
        if run_id is not None:
            sql += " AND run_id = %s"
            params.append(run_id)
        rows = self.query(sql + " ORDER BY run_id, task_id, map_index, key", *params)
        return [{"run_id": r, "task_id": t, "map_index": m, "key": k, "value": v} for r, t, m, k, v in rows]

    def references(self, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        return [
            x for x in self.xcoms(dag_id, run_id) if isinstance(x["value"], dict) and REF_TAG in x["value"]
        ]

    def wait_for_run(self, run: Run, timeout: float, states: Iterable[str] = ("success", "failed")) -> str:
        done = set(states)

        def finished() -> str | None:
            state = self.run_state(run)
            return state if state in done else None

        return str(self._wait_until(finished, timeout, f"{run.dag_id} {run.run_id} to finish"))

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        return self._wait_until(check, timeout, what)

    # -- store vs DB -------------------------------------------------------------------------
    def dag_folder(self, dag_id: str) -> str:
        return f"{self.store.uri}/{dag_id}"

    def compare(self, dag_id: str, run_id: str | None = None) -> tuple[set[str], set[str]]:
        """(objects in the store under the DAG (or run), objects the DB's references name)."""
        refs = self.references(dag_id, run_id)
        referenced = {self.store.key(r["value"]["uri"]) for r in refs}
        under = self.dag_folder(dag_id)
        if run_id is not None:
            under += "/" + encode_segment(run_id)
        return self.store.objects(under), referenced


def encode_segment(text: str) -> str:
    """A path segment as xcomstore writes it (see the README: percent-encoding)."""
    encoded = re.sub(r"[^A-Za-z0-9._-]", lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# What a deployment needs from the machine
# --------------------------------------------------------------------------------------------
def missing_services(kind: str) -> list[str]:
    """What this machine lacks for a deployment of `kind` (empty: nothing)."""
    import importlib.util

    problems = []
    modules = ["psycopg2"] + (["airflow.providers.celery", "redis", "celery"] if kind == "celery" else [])
    missing = [m for m in modules if importlib.util.find_spec(m.split(".")[0]) is None or _no_module(m)]
    if missing:
        hint = "pip install psycopg2-binary apache-airflow-providers-celery"
        problems.append(f"missing Python modules {', '.join(missing)} ({hint})")
    try:
        import psycopg2

        psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5
        ).close()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        problems.append(
            f"PostgreSQL at {PG_HOST}:{PG_PORT} (user {PG_USER}, trust auth) not reachable: {first}"
        )
    if kind == "celery" and "redis" not in missing:
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
        except Exception as exc:
            problems.append(f"Redis at {REDIS_URL} (XCOMSTORE_TEST_REDIS_URL) not reachable: {exc}")
    return problems


def _no_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True
