"""Orphans: objects whose XCom row is gone. A real Airflow metadata DB (SQLite) loses rows through
`airflow dags delete` and `airflow db clean`; `xcomstore gc` then removes exactly those objects.
The REST-API mode is tested against a small local server that answers like Airflow's API.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from tests.lifecycle.airflow_run import DAG_ID, SharedAirflow
from tests.lifecycle.stores import RawObjects, make_store, origin, run_cli

from xcomstore.identity import Origin

if TYPE_CHECKING:
    from tests.integration.harness import RunResult

TWO_HOURS = 7200


def objects_of(run: RunResult) -> set[str]:
    return {row.value["uri"] for row in run.references()}


def age(uris: set[str], seconds: float) -> None:
    """Make objects look older (gc judges age by the store's modification time)."""
    for uri in uris:
        path = uri[len("file://") :]
        then = os.stat(path).st_mtime - seconds
        os.utime(path, (then, then))


def sizes(uris: list[str]) -> dict[str, int]:
    return {uri: os.stat(uri[len("file://") :]).st_size for uri in uris}


@dataclass(frozen=True)
class Orphans:
    store: str
    live: RunResult  # the run whose rows remain
    orphans: set[str]  # objects of the deleted run and of the cleaned rows
    in_flight: str  # an object just written, whose row does not exist yet
    size: dict[str, int]


def make_orphans(airflow: SharedAirflow, store: str, raw: RawObjects) -> Orphans:
    """Three runs: the first loses its rows to `airflow dags delete`, the second to `airflow db
    clean`; the third keeps them. Then an object of a push still in flight."""
    deleted = airflow.run(store)
    airflow.airflow("dags", "delete", DAG_ID, "--yes")
    cleaned = airflow.run(store)
    cutoff = datetime.now(timezone.utc).isoformat()
    live = airflow.run(store)
    airflow.airflow(
        "db", "clean", "--clean-before-timestamp", cutoff, "--tables", "xcom", "--yes", "--skip-archive"
    )
    for run in (deleted, cleaned, live):
        assert run.state == "success", run.describe()
    assert airflow.process.snapshot(cleaned).xcoms == [], "db clean left xcom rows of the older run"
    assert len(airflow.process.snapshot(live).references()) == 3
    late = Origin(dag_id=DAG_ID, run_id=live.run_id, task_id="produce", map_index=-1, key="late")
    in_flight = make_store([store]).push({"pushed": "but no row yet"}, late)["uri"]
    orphans = objects_of(deleted) | objects_of(cleaned)
    assert len(orphans) == 6
    assert set(raw.files(store)) == orphans | objects_of(live) | {in_flight}
    return Orphans(store, live, orphans, in_flight, sizes(raw.files(store)))


def removed(scene: Orphans, uris: set[str]) -> dict[str, Any]:
    return {"orphan": {"objects": len(uris), "bytes": sum(scene.size[uri] for uri in uris)}}


@pytest.mark.airflow
def test_gc_removes_the_orphans_of_deleted_runs_and_db_clean(
    airflow: SharedAirflow, tmp_path: Path, raw: RawObjects, capsys: Any
) -> None:
    scene = make_orphans(airflow, f"file://{tmp_path}/store", raw)
    gc = ["--path", scene.store, "gc", "--db-url", airflow.db_url]

    planned = run_cli(capsys, *gc, "--grace", "0s", "--dry-run", "--json").json()
    assert planned["removed"] == removed(scene, scene.orphans | {scene.in_flight})
    assert (planned["scanned"], planned["dry_run"], len(raw.files(scene.store))) == (10, True, 10)

    age(set(raw.files(scene.store)) - {scene.in_flight}, TWO_HOURS)
    done = run_cli(capsys, *gc, "--grace", "1h", "--json").json()
    assert done["removed"] == removed(scene, scene.orphans)
    assert (done["spared_young"], done["errors"]) == (1, [])
    assert set(raw.files(scene.store)) == objects_of(scene.live) | {scene.in_flight}

    last = run_cli(capsys, *gc, "--grace", "0s")
    assert last.code == 0, last.out + last.err
    assert "removed 1 orphan objects" in last.out, last.out
    assert set(raw.files(scene.store)) == objects_of(scene.live)
    again = airflow.rerun(scene.live, "consume", scene.store)
    assert again.state_of("consume") == "success", again.describe()
    assert again.value("consume") == {"rows": 2000, "array_sum": 1999000.0, "extra": 5000}


# -- the REST-API mode -----------------------------------------------------------------------
USER, PASSWORD, TOKEN = "admin", "s3cret", "token-123"
RUN = "manual__2026-01-02T03:04:05+00:00"  # '+' and ':' must be quoted in the URL


class FakeAirflowApi(ThreadingHTTPServer):
    """POST /auth/token and GET .../dagRuns/{run}/taskInstances/~/xcomEntries, paged like Airflow."""

    def __init__(self, entries: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.entries = entries
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeAirflowApi

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path, None))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/auth/token" or (body.get("username"), body.get("password")) != (USER, PASSWORD):
            self._answer(401, {"detail": "Invalid credentials"})
            return
        self._answer(201, {"access_token": TOKEN})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests.append(("GET", parts.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"detail": "Not authenticated"})
            return
        segments = [unquote(s) for s in parts.path.split("/")]
        # ['', 'api', 'v2', 'dags', dag, 'dagRuns', run, 'taskInstances', '~', 'xcomEntries']
        entries = self.server.entries.get((segments[4], segments[6]))
        if entries is None:
            self._answer(404, {"detail": "DagRun not found"})
            return
        query = parse_qs(parts.query)
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        self._answer(200, {"xcom_entries": entries[offset : offset + limit], "total_entries": len(entries)})


@pytest.fixture
def api() -> Iterator[FakeAirflowApi]:
    server = FakeAirflowApi({})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def entry(task_id: str, key: str, map_index: int = -1) -> dict[str, Any]:
    return {"dag_id": "lifecycle", "run_id": RUN, "task_id": task_id, "map_index": map_index, "key": key}


def test_gc_through_the_rest_api(
    api: FakeAirflowApi, file_url: str, raw: RawObjects, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store([file_url])
    pushed = {
        (task, index, key): store.push(
            {"v": f"{task}{index}{key}"}, origin(key=key, task=task, map_index=index)
        )
        for task, index, key in [("t", -1, "a"), ("t", -1, "b"), ("m", 0, "k"), ("m", 1, "k")]
    }
    gone_run = store.push(
        {"v": 0}, Origin(dag_id="lifecycle", run_id="manual__deleted", task_id="t", map_index=-1, key="a")
    )
    fillers = [entry(f"filler_{i}", "return_value") for i in range(150)]  # live rows land on page 2
    api.entries[("lifecycle", RUN)] = [*fillers, entry("t", "a"), entry("m", "k", 1)]
    orphans = {pushed[("t", -1, "b")]["uri"], pushed[("m", 0, "k")]["uri"], gone_run["uri"]}
    args = ["--path", file_url, "gc", "--api-url", api.url, "--api-user", USER, "--grace", "0s", "--json"]

    monkeypatch.setenv("XCOMSTORE_API_PASSWORD", "wrong")
    refused = run_cli(capsys, *args)
    assert refused.code == 2, refused.out + refused.err
    assert "401" in refused.err, refused.err
    assert len(raw.files(file_url)) == 5, "gc deleted objects without an answer from the API"

    monkeypatch.setenv("XCOMSTORE_API_PASSWORD", PASSWORD)
    size = sum(len(raw.read(uri)) for uri in orphans)
    done = run_cli(capsys, *args)
    assert done.code == 0, done.out + done.err
    assert done.json()["removed"] == {"orphan": {"objects": 3, "bytes": size}}
    assert set(raw.files(file_url)) == {pushed[("t", -1, "a")]["uri"], pushed[("m", 1, "k")]["uri"]}
    listed = [(path, auth) for method, path, auth in api.requests if method == "GET"]
    assert all(auth == f"Bearer {TOKEN}" for _, auth in listed)
    assert any("manual__2026-01-02T03%3A04%3A05%2B00%3A00" in path for path, _ in listed)
