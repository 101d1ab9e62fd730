"""Signed references on real stores: a forged or altered reference is refused by pull and by
purge, and no stored object (nor the planted decoy a forgery points at) is touched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tests.lifecycle.stores import Place, RawObjects, make_store, origin
from tests.servers.fixtures import unique_name

from xcomstore.errors import ForgedReferenceError

SIGNING = "k1:0123456789abcdef-signing-secret"


@dataclass(frozen=True)
class Scene:
    place: Place
    genuine: dict[str, Any]  # the reference a task stored
    other: dict[str, Any]  # another XCom's genuine reference, in the same store
    elsewhere: str  # a location outside the configured path, holding a copy of the object


Forgery = Callable[[Scene], tuple[dict[str, Any], list[str]]]  # forged reference, decoys to plant


def changed_uri(scene: Scene) -> tuple[dict[str, Any], list[str]]:
    return {**scene.genuine, "uri": scene.other["uri"]}, []


def other_bucket(scene: Scene) -> tuple[dict[str, Any], list[str]]:
    uri = scene.genuine["uri"].replace(scene.place.url, scene.elsewhere)
    return {**scene.genuine, "uri": uri}, [uri]


def path_traversal(scene: Scene) -> tuple[dict[str, Any], list[str]]:
    uri = f"{scene.place.url}/../victim.xcs"
    resolved = f"{scene.place.url.rsplit('/', 1)[0]}/victim.xcs"
    return {**scene.genuine, "uri": uri}, [resolved] + ([uri] if uri.startswith("s3://") else [])


def unsigned(scene: Scene) -> tuple[dict[str, Any], list[str]]:
    return {k: v for k, v in scene.genuine.items() if k != "sig"}, []


def altered_size(scene: Scene) -> tuple[dict[str, Any], list[str]]:
    return {**scene.genuine, "size": scene.genuine["size"] + 1}, []


FORGERIES: dict[str, Forgery] = {
    "changed-uri": changed_uri,
    "other-bucket": other_bucket,
    "path-traversal": path_traversal,
    "unsigned": unsigned,
    "altered-size": altered_size,
}


def elsewhere_for(place: Place, request: pytest.FixtureRequest) -> str:
    """The same key prefix in another bucket (S3) or another folder (file)."""
    if place.kind != "s3":
        return place.url.rsplit("/", 1)[0] + "/elsewhere"
    server = request.getfixturevalue("s3_server")
    conn = place.url[len("s3://") :].partition("@")[0]
    return f"s3://{conn}@{server.create_bucket(unique_name())}/xcom"


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_reference_refused_by_pull_and_purge(
    place: Place, raw: RawObjects, request: pytest.FixtureRequest, forgery: str
) -> None:
    store = make_store([place.url], place.opener, signing_keys=SIGNING)
    genuine = store.push({"owner": "me", "rows": list(range(300))}, origin(key="mine"))
    other = store.push({"owner": "them"}, origin(key="theirs"))
    scene = Scene(place, genuine, other, elsewhere_for(place, request))
    forged, decoys = FORGERIES[forgery](scene)
    for decoy in decoys:
        raw.write(decoy, raw.read(genuine["uri"]))  # a genuine object: only the checks stand in the way
    before = {uri: raw.read(uri) for uri in [*raw.files(place.url), *decoys]}
    with pytest.raises(ForgedReferenceError):
        store.pull(forged)
    with pytest.raises(ForgedReferenceError):
        store.purge(forged)
    assert {uri: raw.read(uri) for uri in before} == before, "a forged reference changed a stored object"
    assert store.pull(genuine)["owner"] == "me"
    assert store.purge(genuine) is True
    assert not raw.exists(genuine["uri"])
