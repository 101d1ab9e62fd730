"""Start, probe and stop one server subprocess on 127.0.0.1; shared by every server kind."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run scripts/install-servers"


class ServerNotInstalledError(RuntimeError):
    """The software a server needs is missing; the message says what."""


class ServerStartError(RuntimeError):
    """The server did not come up in time, or exited while starting."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def missing_modules(modules: Sequence[str]) -> list[str]:
    """Names from `modules` that cannot be imported (checked without importing them)."""
    return [name for name in modules if not _module_exists(name)]


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def require_modules(modules: Sequence[str], what: str) -> None:
    """Raise ServerNotInstalledError naming the missing modules, if any."""
    if missing := missing_modules(modules):
        raise ServerNotInstalledError(f"{what}: missing Python modules {', '.join(missing)}")


def answers_http(url: str, timeout: float = 0.5) -> bool:
    """True once anything answers HTTP at `url`; an HTTP error status counts as an answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def airflow_conn_json(
    conn_type: str,
    *,
    login: str | None = None,
    password: str | None = None,
    extra: Mapping[str, object] | None = None,
) -> str:
    """A connection in the JSON form Airflow accepts in an ``AIRFLOW_CONN_<ID>`` variable."""
    conn: dict[str, object] = {"conn_type": conn_type}
    if login is not None:
        conn["login"] = login
    if password is not None:
        conn["password"] = password
    if extra:
        conn["extra"] = dict(extra)
    return json.dumps(conn)


def airflow_conn_uri(
    conn_type: str,
    *,
    login: str = "",
    password: str = "",
    extra: Mapping[str, object] | None = None,
) -> str:
    """The same connection as a URI; the extra travels whole as JSON in ``__extra__``."""
    auth = f"{quote(login, safe='')}:{quote(password, safe='')}@" if login or password else ""
    query = f"/?__extra__={quote(json.dumps(dict(extra)), safe='')}" if extra else ""
    return f"{conn_type.replace('_', '-')}://{auth}{query}"


def conn_env_var(conn_id: str) -> str:
    """The environment variable Airflow reads connection `conn_id` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


@dataclass
class ServerProcess:
    """One server subprocess; `start()` and `stop()` may be repeated, always on the same port."""

    name: str
    argv: Sequence[str]
    port: int
    ready_url: str
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    start_timeout: float = 30.0
    last_startup_seconds: float = 0.0
    _proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        atexit.register(self.stop)  # never leave a server behind, even if teardown is skipped

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> float:
        """Start the server and wait until it answers; return the seconds that took."""
        if self.running:
            return 0.0
        began = time.monotonic()
        self._proc = self._spawn()
        self._wait_ready(began)
        self.last_startup_seconds = time.monotonic() - began
        return self.last_startup_seconds

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (its whole process group), then kill it if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout)

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **(self.env or {})}
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,  # its own group, so stop() reaches any children too
            )

    def _wait_ready(self, began: float) -> None:
        while not answers_http(self.ready_url):
            if self._proc is None or self._proc.poll() is not None:
                raise ServerStartError(f"{self.name} exited while starting:\n{self.log_tail()}")
            if time.monotonic() - began > self.start_timeout:
                self.stop()
                raise ServerStartError(
                    f"{self.name} did not answer at {self.ready_url} within "
                    f"{self.start_timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def start_on_free_port(make: Callable[[int], ServerProcess], attempts: int = 3) -> ServerProcess:
    """Build a server with `make(port)` and start it, retrying on a new port if another process
    took the chosen one between probing and binding."""
    error: ServerStartError | None = None
    for _ in range(attempts):
        server = make(free_port())
        try:
            server.start()
        except ServerStartError as exc:
            error = exc
            continue
        return server
    assert error is not None
    raise error
