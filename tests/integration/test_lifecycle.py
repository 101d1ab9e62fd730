"""What happens to stored objects after the first run: reruns, forged rows, damaged objects.

Each test starts its own run of xcs_lifecycle (produce -> consume; the map-index one, of
xcs_mapped) on a warm Airflow process, then changes the DB row or the object and clears and
re-runs one task, as a user would with "Clear" in the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import MAIN_STORES, OTHER_DBS, Target, param
from .harness import RunResult, flip_byte, is_reference, run_dir

pytestmark = pytest.mark.airflow

# Each store kind over its own protocol (main DB), and the file store on the other DBs.
STORES = [param(name) for name in MAIN_STORES]
EVERYWHERE = STORES + [param(name) for name in OTHER_DBS]
# What happens to a damaged object depends on the store, not on the metadata DB.
store_kinds = pytest.mark.parametrize("target", STORES, indirect=True)


@pytest.fixture(params=EVERYWHERE)
def target(request: pytest.FixtureRequest, all_targets: Any) -> Target:
    return all_targets(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def first_run(target: Target) -> RunResult:
    run = target.process.dag_test("xcs_lifecycle")
    assert run.state == "success", run.describe()
    assert run.value("consume") == {"rows": 2000, "generation": 1}
    return run


def _ref(run: RunResult, key: str = "return_value") -> dict[str, Any]:
    ref = run.value("produce", key)
    assert is_reference(ref), f"produce/{key} was not offloaded: {str(ref)[:200]}"
    return ref  # type: ignore[no-any-return]


def _live_objects(target: Target, run: RunResult) -> tuple[set[str], set[str]]:
    """(objects in the run's folder, objects the run's references point to)."""
    refs = run.references()
    folder = run_dir(refs[0].value["uri"])
    return target.store.objects(folder), {target.store.key(r.value["uri"]) for r in refs}


def assert_read_refused(target: Target, run: RunResult, uri: str) -> None:
    """The reading task failed, saying which XCom and which uri; nothing was returned."""
    assert run.state_of("consume") == "failed", run.describe()
    assert not run.has_row("consume"), "the reader produced a value from a refused reference"
    message = run.failure("consume")
    assert uri in message, f"the error does not name the uri {uri}:\n{message}"
    assert "return_value" in message, f"the error does not name the XCom:\n{message}"


# -- rerun -----------------------------------------------------------------------------------
def test_rerun_purges_the_old_objects(target: Target, first_run: RunResult) -> None:
    old_ref, old_extra = _ref(first_run), _ref(first_run, "extra")
    env = {
        "XCS_GENERATION": "2",
        "XCS_DROP_EXTRA": "1",
        "XCS_ASSERT_ABSENT": f"{old_ref['uri']} {old_extra['uri']}",  # purged *before* the task
    }
    rerun = target.process.rerun(first_run, "produce", env=env)
    assert rerun.state_of("produce") == "success", rerun.describe()
    assert rerun.ti("produce").try_number == 2
    assert not rerun.has_row("produce", "extra")
    assert not target.store.exists(old_extra["uri"]), "the rerun left the old 'extra' object"
    new_ref = _ref(rerun)
    assert new_ref["uri"] == old_ref["uri"], "paths are deterministic: same XCom, same object"
    assert new_ref["checksum"] != old_ref["checksum"], "the object was not rewritten"
    in_folder, referenced = _live_objects(target, rerun)
    assert in_folder == referenced
    # The downstream task, re-run too, reads the new object.
    again = target.process.rerun(rerun, "consume")
    assert again.value("consume") == {"rows": 2000, "generation": 2}, again.describe()


def test_rerun_of_one_map_index_leaves_the_others(target: Target) -> None:
    run = target.process.dag_test("xcs_mapped")
    assert run.state == "success", run.describe()
    uris = [run.value("make_frame", map_index=i)["uri"] for i in range(3)]
    before = [target.store.read(u) for u in uris]
    rerun = target.process.rerun(run, "make_frame", map_index=1)
    assert rerun.state_of("make_frame", 1) == "success", rerun.describe()
    assert [rerun.value("make_frame", map_index=i)["uri"] for i in range(3)] == uris
    assert target.store.read(uris[0]) == before[0]
    assert target.store.read(uris[2]) == before[2]
    assert target.store.exists(uris[1])
    in_folder, referenced = _live_objects(target, rerun)
    assert in_folder == referenced


# -- forged references -----------------------------------------------------------------------
def _relative(target: Target, uri: str) -> str:
    return uri[len(target.config.path) + 1 :]


def _traversal(target: Target, uri: str) -> tuple[str, list[str]]:
    """`<path>/../victim.xcs`, and where a store that follows it would find the victim."""
    forged = f"{target.config.path}/../victim.xcs"
    parent = target.config.path.rsplit("/", 1)[0]
    # S3 keys are literal strings: plant the victim at both the literal and the resolved key.
    # (Azure's and GCS's HTTP clients resolve the `..` in a URL, so only the resolved key exists.)
    places = [f"{parent}/victim.xcs"] + ([forged] if forged.startswith("s3://") else [])
    return forged, places


def _is_file(target: Target) -> bool:
    return target.config.path.startswith("file://")


def _elsewhere(target: Target, uri: str) -> tuple[str, list[str]]:
    """The same relative path in another bucket (object stores) or another folder (file)."""
    relative = _relative(target, uri)
    if _is_file(target):
        forged = f"{target.config.path.rsplit('/', 1)[0]}/elsewhere/{relative}"
    else:
        scheme = target.config.path.partition("://")[0]
        forged = f"{scheme}://{_other_bucket(target)}/{relative}"
    return forged, [forged]


def _sibling(target: Target, uri: str) -> tuple[str, list[str]]:
    """`<path>-evil/...`: shares the configured path as a string prefix, but is outside it."""
    forged = f"{target.config.path}-evil/{_relative(target, uri)}"
    return forged, [forged]


def _other_bucket(target: Target) -> str:
    """`conn@bucket-other` for the configured `scheme://conn@bucket/...`."""
    user_bucket = target.config.path.partition("://")[2].partition("/")[0]
    return f"{user_bucket}-other"


FORGERIES: dict[str, Callable[[Target, str], tuple[str, list[str]]]] = {
    "traversal": _traversal,
    "elsewhere": _elsewhere,
    "prefix-sibling": _sibling,
}


def _plant_victims(target: Target, places: list[str], data: bytes) -> None:
    target.store.ensure_bucket(_other_bucket(target).rpartition("@")[2])
    for place in places:
        target.store.write(place, data)


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_reference_is_refused(target: Target, first_run: RunResult, forgery: str) -> None:
    ref = _ref(first_run)
    # The victim is a genuine object (same bytes, same checksum), so only the location check
    # stands between the forged reference and a successful read.
    genuine = target.store.read(ref["uri"])
    forged_uri, places = FORGERIES[forgery](target, ref["uri"])
    _plant_victims(target, places, genuine)
    target.process.set_xcom(first_run, "produce", {**ref, "uri": forged_uri})
    rerun = target.process.rerun(first_run, "consume")
    assert_read_refused(target, rerun, forged_uri)
    for place in places:
        assert target.store.read(place) == genuine, f"{place} was changed"


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_forged_reference_is_not_purged(target: Target, first_run: RunResult, forgery: str) -> None:
    """A rerun purges the task's old objects: a forged row must not make it delete a victim."""
    ref = _ref(first_run, "extra")
    genuine = target.store.read(ref["uri"])
    forged_uri, places = FORGERIES[forgery](target, ref["uri"])
    _plant_victims(target, places, genuine)
    target.process.set_xcom(first_run, "produce", {**ref, "uri": forged_uri}, key="extra")
    rerun = target.process.rerun(first_run, "produce")
    assert rerun.state_of("produce") == "success", rerun.describe()
    for place in places:
        assert target.store.exists(place), f"the purge deleted {place}"
        assert target.store.read(place) == genuine


def test_reference_copied_from_another_xcom_is_refused(target: Target, first_run: RunResult) -> None:
    """A genuine reference, copied into another XCom's row, must not hand over that other value."""
    other = _ref(first_run, "extra")
    target.process.set_xcom(first_run, "produce", other)  # into return_value's row
    rerun = target.process.rerun(first_run, "consume")
    assert_read_refused(target, rerun, other["uri"])


# -- damaged objects -------------------------------------------------------------------------
@store_kinds
def test_corrupted_object_is_detected(target: Target, first_run: RunResult) -> None:
    uri = _ref(first_run)["uri"]
    data = target.store.read(uri)
    target.store.write(uri, flip_byte(data, len(data) // 2))  # the middle: inside the payload
    rerun = target.process.rerun(first_run, "consume")
    assert_read_refused(target, rerun, uri)


@store_kinds
def test_truncated_object_is_detected(target: Target, first_run: RunResult) -> None:
    uri = _ref(first_run)["uri"]
    target.store.write(uri, target.store.read(uri)[:-100])
    rerun = target.process.rerun(first_run, "consume")
    assert_read_refused(target, rerun, uri)


@store_kinds
def test_missing_object_is_detected(target: Target, first_run: RunResult) -> None:
    uri = _ref(first_run)["uri"]
    target.store.delete(uri)
    rerun = target.process.rerun(first_run, "consume")
    assert_read_refused(target, rerun, uri)
