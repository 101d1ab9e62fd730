"""Which XComs still exist, asked of the Airflow metadata DB (read-only) or of its REST API.

The garbage collector asks this once per DAG run it finds in the store; an object whose XCom
row is gone (DAG run deleted, `airflow db clean`, a delete in the UI or REST API, a task that
died between writing the object and saving the row) is an orphan.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

from xcomstore.core.reference import Reference, is_reference
from xcomstore.errors import ConfigError, StoreUnavailableError

#: (task_id, map_index, key) of a live XCom → the object URIs its row references, or None when
#: only the row's existence is known (the REST API lists XComs without their values).
LiveXComs = dict[tuple[str, int, str], frozenset[str] | None]


class LiveIndex(Protocol):
    def live(self, dag_id: str, run_id: str) -> LiveXComs:
        """The XComs of one DAG run that still have a row."""


class MetadataDbIndex:
    """Reads the `xcom` table with a read-only query; never writes."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self._engine = create_engine(url)

    def live(self, dag_id: str, run_id: str) -> LiveXComs:
        from sqlalchemy import text

        query = text("SELECT task_id, map_index, key, value FROM xcom WHERE dag_id = :dag AND run_id = :run")
        with self._engine.connect() as connection:
            rows = connection.execute(query, {"dag": dag_id, "run": run_id}).all()
        return {(str(t), int(m), str(k)): _referenced(v) for t, m, k, v in rows}


def _referenced(value: Any) -> frozenset[str]:
    """The object URIs a row's value points to (none for an inline value). A string counts as
    the URI it may be: common-io's rows hold their object's URL, and a string names no other."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:  # the driver decoded the JSON already: a string, as it is
            return frozenset({value}) if isinstance(value, str) else frozenset()
    if isinstance(value, str):
        return frozenset({value})
    if not is_reference(value):
        return frozenset()
    try:
        return frozenset(Reference.from_json(value).uris)
    except Exception:  # a malformed reference keeps nothing alive
        return frozenset()


class RestApiIndex:
    """Lists a run's XComs through Airflow's public REST API (v2), for hosts without DB access."""

    def __init__(
        self, base_url: str, *, token: str | None = None, user: str | None = None, password: str | None = None
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token or (self._login(user, password) if user else None)

    def _login(self, user: str | None, password: str | None) -> str:
        body = json.dumps({"username": user, "password": password or ""}).encode()
        answer = self._request("POST", "/auth/token", body, authorised=False)
        token = answer.get("access_token")
        if not isinstance(token, str):
            raise ConfigError(f"the Airflow API at {self._base} gave no access token for user {user!r}")
        return token

    def live(self, dag_id: str, run_id: str) -> LiveXComs:
        found: LiveXComs = {}
        offset = 0
        quote = urllib.parse.quote
        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/~/xcomEntries"
        while True:
            page = self._request("GET", f"{path}?limit=100&offset={offset}")
            entries = page.get("xcom_entries", [])
            for entry in entries:
                found[(entry["task_id"], int(entry.get("map_index", -1)), entry["key"])] = None
            offset += len(entries)
            if not entries or offset >= int(page.get("total_entries", 0)):
                return found

    def _request(
        self, method: str, path: str, body: bytes | None = None, authorised: bool = True
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorised and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self._base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "GET":  # the DAG or run is gone: no live XComs
                return {"xcom_entries": [], "total_entries": 0}
            raise StoreUnavailableError(
                f"Airflow API {method} {path} answered {exc.code}: {exc.reason}"
            ) from exc
        except OSError as exc:
            raise StoreUnavailableError(f"Airflow API at {self._base} unreachable: {exc}") from exc
