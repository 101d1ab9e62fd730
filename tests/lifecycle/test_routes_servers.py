"""Routes over four locations at once: two local folders, the S3 server and Azurite, through
Airflow connections. DAGs routed to each; the CLI's ls / du / verify, repair and rekey cover
every location; a rule change keeps old objects readable where they are."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.lifecycle.stores import make_store, run_cli, uris
from tests.servers.azure import AzureServer

from xcomstore.airflow.environment import airflow_filesystem
from xcomstore.core import layout
from xcomstore.core.store import XComStore
from xcomstore.errors import ForgedReferenceError
from xcomstore.identity import Origin, Wanted
from xcomstore.ops.rekey import rekey
from xcomstore.ops.repair import repair

pytestmark = [pytest.mark.s3, pytest.mark.azure]
RUN = "manual__2026-01-02T03:04:05+00:00"
KEY = "k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes
NEW_KEY = "k2:" + "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="


@pytest.fixture
def where(
    tmp_path: Path, s3_url: str, azure_server: AzureServer, azure_container: str, azure_conn_id: str
) -> dict[str, str]:
    return {
        "shared": f"file://{tmp_path}/shared",
        "local": f"file://{tmp_path}/local",
        "s3": s3_url,
        "azure": azure_server.url(azure_conn_id, azure_container, "xcom"),
    }


def rules(url: dict[str, str]) -> str:
    return f"dag_id=s3_* -> {url['s3']}; dag_id=azure_* -> {url['azure']}, {url['local']}; key=local -> {url['local']}"


def routed_store(url: dict[str, str], routes: str, **options: str) -> XComStore:
    return make_store([url["shared"]], airflow_filesystem, routes=routes, **options)


def xcom(dag: str, key: str = "return_value") -> Origin:
    return Origin(dag_id=dag, run_id=RUN, task_id="task", map_index=-1, key=key)


def wanted(origin: Origin) -> Wanted:
    return Wanted(dag_id=origin.dag_id, run_id=origin.run_id, task_id=origin.task_id, key=origin.key)


def held(store: XComStore) -> dict[str, set[str]]:
    """The object paths each location holds (its URL → relative paths)."""
    return {loc.url: {info.relpath for info in loc.list()} for loc in store.locations}


def copy_object(store: XComStore, source: str, target: str) -> None:
    """The very bytes of one object, at another URI (as whoever can write to a store could)."""
    (src, relpath), (dst, _) = store.locate(source), store.locate(target)
    with src.reader(relpath) as (stream, _size), dst.writer(relpath) as sink:
        shutil.copyfileobj(stream, sink)


SCENE = {"s3_dag": "s3", "azure_dag": "azure", "plain_dag": "shared"}


def push_all(store: XComStore) -> dict[Origin, dict[str, Any]]:
    stored = {xcom(dag): store.push({"dag": dag, "rows": list(range(500))}, xcom(dag)) for dag in SCENE}
    stored[xcom("plain_dag", "local")] = store.push("a local one " * 100, xcom("plain_dag", "local"))
    return stored


def test_dags_routed_to_each_location_and_the_cli_covers_them_all(
    where: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    store = routed_store(where, rules(where))
    stored = push_all(store)
    for origin, ref in stored.items():
        relpath = layout.object_path(origin)
        expected = {"local": ["local"], "return_value": [SCENE[origin.dag_id]]}[origin.key]
        if origin.dag_id == "azure_dag":
            expected = ["azure", "local"]
        assert uris(ref) == [f"{where[name]}/{relpath}" for name in expected]
        assert store.pull(ref, wanted(origin)) == store.read(ref["uri"])
    assert {url: len(paths) for url, paths in held(store).items()} == {
        where["shared"]: 1,
        where["local"]: 2,
        where["s3"]: 1,
        where["azure"]: 1,
    }

    monkeypatch.setenv("AIRFLOW__XCOMSTORE__ROUTES", rules(where))
    cli = ["--path", where["shared"]]
    listed = run_cli(capsys, *cli, "ls", "--json")
    assert sorted(o["uri"] for o in listed.json()) == sorted(ref["uri"] for ref in stored.values()), (
        listed.out
    )
    used = run_cli(capsys, *cli, "du", "--json").json()
    assert {row["dag"]: row["objects"] for row in used} == {"s3_dag": 1, "azure_dag": 1, "plain_dag": 2}
    checked = run_cli(capsys, *cli, "verify", "--json")
    assert (checked.code, checked.json()["checked"], checked.json()["failed"]) == (0, 5, 0), checked.out

    # A reference into another route's location is refused, though the object is there.
    s3_ref = stored[xcom("s3_dag")]
    s3_copy = s3_ref["uri"].replace(where["s3"], where["local"])
    copy_object(store, s3_ref["uri"], s3_copy)
    with pytest.raises(ForgedReferenceError, match=r"where rule 1 of \[xcomstore\] routes"):
        store.pull({**s3_ref, "uri": s3_copy}, wanted(xcom("s3_dag")))


def test_repair_copies_within_a_route_and_rekey_covers_every_location(where: dict[str, str]) -> None:
    store = routed_store(where, rules(where), encryption_keys=KEY)
    stored = push_all(store)
    azure_ref = stored[xcom("azure_dag")]
    local, relpath = store.locate(uris(azure_ref)[1])
    local.delete(relpath)

    summary = repair(store)
    assert summary.checked == 4  # the four XComs, each once
    assert [(c["to"], c["from"]) for c in summary.copied] == [(uris(azure_ref)[1], azure_ref["uri"])]
    assert (summary.unrecoverable, summary.failed) == ([], [])
    assert held(store)[where["local"]] == {relpath, layout.object_path(xcom("plain_dag", "local"))}

    rekeyed = rekey(routed_store(where, rules(where), encryption_keys=f"{NEW_KEY}, {KEY}"))
    assert (len(rekeyed.rewritten), rekeyed.errors) == (5, [])
    after = routed_store(where, rules(where), encryption_keys=NEW_KEY)
    for origin, ref in stored.items():
        assert after.pull(ref, wanted(origin)) is not None


def test_after_a_rule_change_old_xcoms_stay_where_they_are(where: dict[str, str]) -> None:
    before = routed_store(where, rules(where))
    stored = push_all(before)
    swapped = (
        f"dag_id=s3_* -> {where['azure']}; dag_id=azure_* -> {where['s3']}; key=local -> {where['local']}"
    )
    after = routed_store(where, swapped)
    for origin, ref in stored.items():
        assert after.pull(ref, wanted(origin)) == before.pull(ref, wanted(origin))
    moved = after.push("new", xcom("s3_dag"))
    assert moved["uri"].startswith(where["azure"] + "/")
    # The unchanged rule 3 still holds its XComs to its own location.
    local_ref = stored[xcom("plain_dag", "local")]
    assert local_ref["route"] == after.routing.routes[2].fingerprint
