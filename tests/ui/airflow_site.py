"""A real Airflow 3 API server with the xcomstore plugin, in a temporary AIRFLOW_HOME.

- SQLite metadata DB; the Simple auth manager (Airflow's default) with fixed passwords;
- multi-team mode: two DAG bundles, one per team, so that DAG permissions really differ per
  user: `analyst` (viewer in team analytics) may read sales_forecast but not payroll (team
  finance); `admin` may read everything;
- xcomstore as the XCom backend, with a file:// store holding objects written by setup_site.py;
- `airflow api-server` on a free port, started once per test session.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
AIRFLOW = str(Path(PYTHON).with_name("airflow"))
STARTUP_TIMEOUT = 240.0  # a cold start on a busy 2-core machine
USERS = {"admin": ("admin", "admin-secret"), "analyst": ("viewer", "analyst-secret")}
TEAMS = {"analyst": "analytics"}

DAG_TEMPLATE = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG({dag_id!r}, schedule=None, tags=["xcomstore-ui-test"]):
    tasks = [EmptyOperator(task_id=name) for name in {tasks!r}]
    for upstream, downstream in zip(tasks, tasks[1:]):
        upstream >> downstream
"""
DAGS = {
    "analytics": ("sales_forecast", ["extract", "features", "forecast", "report", "export"]),
    "finance": ("payroll", ["salaries"]),
}


@dataclass
class Site:
    home: Path
    port: int
    env: dict[str, str]
    objects: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "api-server.log"

    def token(self, user: str) -> str:
        """A JWT for `user`, from the Simple auth manager's /auth/token."""
        body = json.dumps({"username": user, "password": USERS[user][1]}).encode()
        request = urllib.request.Request(
            f"{self.url}/auth/token", body, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["access_token"])

    def get(self, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET without following redirects: (status, headers, body)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def site_env(home: Path, port: int) -> dict[str, str]:
    bundles = [
        {
            "name": f"{team}_dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(home / "dags" / team)},
            "team_name": team,
        }
        for team in ("analytics", "finance")
    ]
    users = ",".join(
        f"{name}:{role}" + (f":{TEAMS[name]}" if name in TEAMS else "") for name, (role, _) in USERS.items()
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    return {
        **base,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__MULTI_TEAM": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": "xcomstore-ui-tests-only",
        "AIRFLOW__CORE__XCOM_BACKEND": "xcomstore.XComStoreBackend",
        "AIRFLOW__XCOMSTORE__PATH": f"file://{home / 'store'}",
        "AIRFLOW__XCOMSTORE__THRESHOLD": "1024",
        "AIRFLOW__XCOMSTORE__COMPRESSION": "zstd",
    }


def prepare(home: Path) -> Site:
    """Write the DAGs and passwords, create the DB and the stored XComs."""
    port = free_port()
    env = site_env(home, port)
    for team, (dag_id, tasks) in DAGS.items():
        folder = home / "dags" / team
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{dag_id}.py").write_text(DAG_TEMPLATE.format(dag_id=dag_id, tasks=tasks))
    _install_plugin(home / "plugins")
    (home / "passwords.json").write_text(json.dumps({name: pw for name, (_, pw) in USERS.items()}))
    done = subprocess.run(
        [PYTHON, str(HERE / "setup_site.py")], env=env, cwd=home, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"setup_site.py failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return Site(home, port, env, report["objects"])


def _install_plugin(folder: Path) -> None:
    """Until the package declares its `airflow.plugins` entry point, load it from the plugins
    folder; with the entry point installed, that would register it twice."""
    folder.mkdir(parents=True, exist_ok=True)
    if not any(
        ep.value.startswith("xcomstore.airflow.plugin") for ep in entry_points(group="airflow.plugins")
    ):
        (folder / "xcomstore_ui.py").write_text(
            "from xcomstore.airflow.plugin import XComStorePlugin  # noqa: F401\n"
        )


def start(site: Site) -> None:
    """Start `airflow api-server` and wait until it answers."""
    with site.log.open("wb") as log:
        site.process = subprocess.Popen(
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(site.port), "--workers", "1"],
            env=site.env,
            cwd=site.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and its workers
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if site.process.poll() is not None:
            raise RuntimeError(f"api-server exited with {site.process.returncode}:\n{tail(site.log)}")
        with contextlib.suppress(OSError):
            if site.get("/api/v2/monitor/health")[0] == 200:
                return
        time.sleep(0.5)
    stop(site)
    raise RuntimeError(f"api-server did not answer within {STARTUP_TIMEOUT:.0f}s:\n{tail(site.log)}")


def stop(site: Site) -> None:
    process = site.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def tail(path: Path, chars: int = 6000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-chars:]
    return ""
