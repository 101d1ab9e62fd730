"""Routes: parsing and validation of [xcomstore] routes, the choice of a route, its fingerprint,
and the store's writes and read checks on local folders (the servers: tests/lifecycle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xcomstore.airflow.environment import check_filesystems
from xcomstore.core import layout
from xcomstore.core.routes import UNKNOWN_TEAM, Routing
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import ConfigError, ForgedReferenceError
from xcomstore.identity import Origin, Wanted

RULES = "dag_id=finance_* -> file:///f/xcom; key=model_*, team=ml -> file:///m1, file:///m2"
BIG = "x" * 200  # offloaded with threshold 0 anyway; a value of some size


def routing(rules: str = RULES, path: str = "file:///shared") -> Routing:
    return Settings.from_mapping({"path": path, "routes": rules}).routing


def xcom(dag: str = "dag", key: str = "return_value", task: str = "task", run: str = "run") -> Origin:
    return Origin(dag_id=dag, run_id=run, task_id=task, map_index=-1, key=key)


def wanted(where: Origin) -> Wanted:
    return Wanted(dag_id=where.dag_id, run_id=where.run_id, task_id=where.task_id, key=where.key)


# -- parsing ---------------------------------------------------------------------------------
def test_rules_parse_in_order_with_path_as_the_fallback() -> None:
    routes = routing().routes
    assert [r.number for r in routes] == [1, 2, 0]
    assert [r.urls for r in routes] == [
        ("file:///f/xcom",),
        ("file:///m1", "file:///m2"),
        ("file:///shared",),
    ]
    assert routing().urls == ("file:///shared", "file:///f/xcom", "file:///m1", "file:///m2")
    assert routing("key=a -> file:///a\n  key=b -> file:///b").urls == (
        "file:///shared",
        "file:///a",
        "file:///b",
    )
    assert Settings.from_mapping({"path": "file:///shared"}).routing.routes[0].number == 0


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("dag=x -> file:///a", "rule 1 ('dag=x -> file:///a'): condition 'dag=x': unknown field 'dag'"),
        (
            "key=a -> file:///a; task_id=[ab -> file:///b",
            "rule 2 ('task_id=[ab -> file:///b'): condition 'task_id=[ab': bad glob",
        ),
        ("key=a -> bucket/x", "rule 1 ('key=a -> bucket/x'): URL = 'bucket/x' is not a URL"),
        ("key=a -> file://tmp/x", "names the host 'tmp'"),
        ("key=a", "rule 1 ('key=a'): is not '<field>=<glob>"),
        (" -> file:///a", "has no condition before '->'"),
        ("key=a ->", "has no URL after '->'"),
        ("key=a, key=b -> file:///a", "names a field twice"),
        ("key=a -> file:///a, file:///a", "names the same location twice"),
        (
            "key=a -> file:///a; key=a -> file:///b",
            "rule 2 ('key=a -> file:///b'): repeats the conditions of rule 1",
        ),
        ("key=a -> file:///shared/a", "location 'file:///shared/a' lies inside location 'file:///shared'"),
    ],
)
def test_a_bad_rule_is_refused_naming_it(rules: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        routing(rules)
    assert "[xcomstore] routes (AIRFLOW__XCOMSTORE__ROUTES): " in str(info.value)
    assert message in str(info.value)


def test_required_copies_must_fit_every_route() -> None:
    raw = {"path": "file:///a, file:///b", "required_copies": "2", "routes": "key=k -> file:///c"}
    with pytest.raises(ConfigError, match=r"rule 1 \('key=k -> file:///c'\): has 1 URL\(s\), fewer than"):
        Settings.from_mapping(raw)
    Settings.from_mapping({**raw, "routes": "key=k -> file:///c, file:///d"})


def test_globs_that_hold_brackets_are_fine() -> None:
    assert (
        routing("key=[]x] -> file:///a; key=[!]]* -> file:///b; key=a[0-9] -> file:///c").routes[2].number
        == 3
    )


def test_a_scheme_nothing_installed_opens_is_refused_naming_its_rule() -> None:
    with pytest.raises(
        ConfigError,
        match=r"rule 2 of \[xcomstore\] routes \('key=b -> nope://b/x'\): no filesystem for 'nope'",
    ):
        check_filesystems(routing("key=a -> file:///a; key=b -> nope://b/x"), with_airflow=False)
    with pytest.raises(ConfigError, match=r"^\[xcomstore\] path: no filesystem for 'nope'"):
        check_filesystems(routing("key=a -> file:///a", path="nope://x/y"), with_airflow=False)
    check_filesystems(
        routing("key=a -> s3://conn@bucket/x; key=b -> abfs://c@container/x"), with_airflow=True
    )


# -- choosing --------------------------------------------------------------------------------
def test_first_match_wins_and_the_rest_goes_to_path() -> None:
    routes = routing()
    assert routes.choose(xcom(dag="finance_daily", key="model_a"), "ml").number == 1
    assert routes.choose(xcom(key="model_a"), "ml").number == 2
    assert routes.choose(xcom(key="model_a"), "web").number == 0
    assert routes.choose(xcom(key="model_a"), None).number == 0  # no team: team= never holds
    assert routes.choose(xcom(dag="Finance_daily"), None).number == 0  # globs are case-sensitive


def test_an_unknown_team_leaves_the_team_rules_possible() -> None:
    routes = routing()
    assert [r.number for r in routes.possible(xcom(key="model_a"), UNKNOWN_TEAM)] == [2, 0]
    assert [r.number for r in routes.possible(xcom(key="model_a"), "ml")] == [2]
    assert [r.number for r in routes.possible(xcom(dag="finance_x"), UNKNOWN_TEAM)] == [1]


def test_a_fingerprint_changes_with_the_rules_deciding_its_route_only() -> None:
    before = routing("key=a -> file:///a; key=b -> file:///b")
    later_rule_changed = routing("key=a -> file:///a; key=b -> file:///c")
    earlier_rule_changed = routing("key=z -> file:///a; key=b -> file:///b")
    assert before.routes[0].fingerprint == later_rule_changed.routes[0].fingerprint
    assert before.routes[1].fingerprint != later_rule_changed.routes[1].fingerprint
    assert before.routes[1].fingerprint != earlier_rule_changed.routes[1].fingerprint
    # Where the XComs of rule 2 go does not change which XComs reach the fallback.
    assert before.fallback.fingerprint == later_rule_changed.fallback.fingerprint
    assert before.fallback.fingerprint != earlier_rule_changed.fallback.fingerprint
    assert len({r.fingerprint for r in before.routes}) == 3


# -- the store -------------------------------------------------------------------------------
def folders(tmp_path: Path) -> dict[str, str]:
    return {name: f"file://{tmp_path}/{name}" for name in ("shared", "finance", "ml1", "ml2")}


def make_store(tmp_path: Path, rules: str | None = None, **options: str) -> XComStore:
    url = folders(tmp_path)
    rules = rules or f"dag_id=finance_* -> {url['finance']}; team=ml -> {url['ml1']}, {url['ml2']}"
    raw = {"path": url["shared"], "routes": rules, "threshold": "0", **options}
    return XComStore.from_settings(Settings.from_mapping(raw))


def test_pushes_go_to_their_route_and_read_back(tmp_path: Path) -> None:
    store, url = make_store(tmp_path), folders(tmp_path)
    cases = [(xcom(dag="finance_daily"), None, [url["finance"]]), (xcom(), "ml", [url["ml1"], url["ml2"]])]
    cases.append((xcom(), "web", [url["shared"]]))
    for where, team, expected in cases:
        stored = store.push(BIG, where, team=team)
        relpath = layout.object_path(where)
        assert [stored["uri"], *stored.get("replicas", [])] == [f"{u}/{relpath}" for u in expected]
        assert stored["route"] == store.routing.choose(where, team).fingerprint
        assert store.pull(stored, wanted(where), team=team) == BIG
        assert store.pull(stored, wanted(where)) == BIG  # the team unknown: still its route
        store.purge(stored, wanted(where), team=team)


def test_without_routes_references_carry_no_fingerprint(tmp_path: Path) -> None:
    store = XComStore.from_settings(Settings.from_mapping({"path": f"file://{tmp_path}/s", "threshold": "0"}))
    assert "route" not in store.push(BIG, xcom())


def moved(stored: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The reference with its copies said to be in location `new` instead of `old`."""
    doc = {**stored, "uri": stored["uri"].replace(old, new)}
    doc.pop("replicas", None)
    return doc


def test_a_reference_into_another_routes_location_is_refused(tmp_path: Path) -> None:
    store, url = make_store(tmp_path), folders(tmp_path)
    where = xcom(dag="finance_daily")
    stored = store.push(BIG, where)
    # The very object, copied to the shared location (by whoever can write there): only the
    # route says it does not belong there.
    relpath = layout.object_path(where)
    (tmp_path / "shared" / relpath).parent.mkdir(parents=True)
    (tmp_path / "shared" / relpath).write_bytes((tmp_path / "finance" / relpath).read_bytes())
    forged = moved(stored, url["finance"], url["shared"])
    with pytest.raises(ForgedReferenceError) as info:
        store.pull(forged, wanted(where))
    message = str(info.value)
    assert f"leads into {url['shared']}, where rule 1 of [xcomstore] routes" in message
    assert str(where) in message
    assert "dag_id=finance_*" in message
    with pytest.raises(ForgedReferenceError, match="where rule 1"):
        store.purge(forged, wanted(where))
    assert (tmp_path / "shared" / relpath).exists()


def test_a_reference_claiming_a_route_its_xcom_does_not_take_is_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    where = xcom()
    stored = store.push(BIG, where, team="ml")
    # Claims the ml route for a web-team XCom (known team) or a finance DAG's XCom.
    with pytest.raises(ForgedReferenceError, match="which does not route XCom dag/run/task/return_value"):
        store.pull(stored, wanted(where), team="web")
    finance = xcom(dag="finance_daily")
    store.push(BIG, finance, team="ml")  # into the finance folder
    claimed = {**stored, "uri": stored["uri"].replace("/dag/", "/finance_daily/")}
    claimed["replicas"] = [u.replace("/dag/", "/finance_daily/") for u in stored["replicas"]]
    with pytest.raises(ForgedReferenceError, match=r"rule 2 of .* which does not route XCom finance_daily"):
        store.pull(claimed, wanted(finance))


def test_after_a_rule_change_old_objects_stay_readable_where_they_are(tmp_path: Path) -> None:
    url = folders(tmp_path)
    before = make_store(tmp_path)
    where = xcom(dag="finance_daily")
    old = before.push(BIG, where)
    after = make_store(
        tmp_path, f"dag_id=finance_* -> {url['ml1']}; team=ml -> {url['ml2']}, {url['finance']}"
    )
    assert after.pull(old, wanted(where)) == BIG  # the rule that placed it changed
    new = after.push("new", where)
    assert new["uri"].startswith(url["ml1"])
    assert after.pull(new, wanted(where)) == "new"
    # Unchanged earlier rules keep their fingerprint and their check; a location no longer
    # configured is refused.
    retired = make_store(tmp_path, f"dag_id=finance_* -> {url['ml1']}")
    with pytest.raises(ForgedReferenceError, match="is not inside the configured location"):
        retired.pull(old, wanted(where))


def test_references_from_before_routes_are_read_in_any_configured_location(tmp_path: Path) -> None:
    url = folders(tmp_path)
    plain = XComStore.from_settings(Settings.from_mapping({"path": url["finance"], "threshold": "0"}))
    where = xcom(dag="finance_daily")
    legacy = plain.push(BIG, where)
    assert "route" not in legacy
    store = make_store(tmp_path, f"team=ml -> {url['ml1']}")  # finance is no longer configured …
    with pytest.raises(ForgedReferenceError, match="is not inside the configured location"):
        store.pull(legacy, wanted(where))
    assert make_store(tmp_path).pull(legacy, wanted(where)) == BIG  # … here it is (rule 1)


def test_signed_references_cover_the_route(tmp_path: Path) -> None:
    store = make_store(tmp_path, signing_keys="k1:0123456789abcdef0123")
    where = xcom(dag="finance_daily")
    stored = store.push(BIG, where)
    for altered in ({k: v for k, v in stored.items() if k != "route"}, {**stored, "route": "0" * 12}):
        with pytest.raises(ForgedReferenceError, match="signature does not match"):
            store.pull(altered, wanted(where))
    assert store.pull(stored, wanted(where)) == BIG


def test_every_configured_location_is_known_to_the_store(tmp_path: Path) -> None:
    store, url = make_store(tmp_path), folders(tmp_path)
    assert [location.url for location in store.locations] == [
        url["shared"],
        url["finance"],
        url["ml1"],
        url["ml2"],
    ]
    assert store.location.url == url["shared"]
    for location in store.locations:
        assert store.locate(f"{location.url}/{layout.object_path(xcom())}")[0] is location


def test_a_push_whose_route_depends_on_an_unknown_team_is_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    assert store.push(BIG, xcom(dag="finance_daily"), team=UNKNOWN_TEAM)["uri"].startswith(
        folders(tmp_path)["finance"]
    )
    with pytest.raises(
        ConfigError, match=r"where it goes depends on its DAG's team \(rule 2 of .*Nothing was stored"
    ):
        store.push(BIG, xcom(), team=UNKNOWN_TEAM)
    assert not (tmp_path / "shared").exists()
    assert not (tmp_path / "ml1").exists()
    inline = make_store(tmp_path, threshold="1KiB")
    assert inline.push("small", xcom(), team=UNKNOWN_TEAM) == "small"  # inline: no route needed
