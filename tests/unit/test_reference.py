"""reference: the tagged dict kept in the metadata DB; strict parsing, never mistaken for data."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xcomstore.core.reference import TAG, VERSION, Reference, is_reference
from xcomstore.errors import ForgedReferenceError

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
REF = Reference(
    uri="s3://conn@bucket/xcom/dag/run/task/-1/return_value.xcs",
    type_name="pandas.DataFrame",
    summary="DataFrame 10×3",
    codec="arrow",
    compression="zstd",
    size=1234,
    stored_bytes=987,
    checksum="blake3:" + "ab" * 32,
)
FIELDS = ("uri", "type", "summary", "codec", "compression", "checksum", "size", "stored_bytes")


def test_round_trip() -> None:
    data = REF.to_json()
    assert data[TAG] == VERSION
    assert is_reference(data)
    assert Reference.from_json(data) == REF


def test_round_trip_with_replicas_and_expiry() -> None:
    ref = dataclasses.replace(
        REF, replicas=("gs://c@b/x/a.xcs", "file:///x/a.xcs"), expires="2024-06-01T00:00:00+00:00"
    )
    data = ref.to_json()
    assert data["replicas"] == list(ref.replicas)
    assert data["expires"] == ref.expires
    assert Reference.from_json(data) == ref
    assert ref.uris == (ref.uri, *ref.replicas)
    assert "replicas" not in REF.to_json()
    assert "expires" not in REF.to_json()
    assert REF.uris == (REF.uri,)


def test_reference_written_before_blake3_reads_as_sha256() -> None:
    """References of format version 1 objects hold a bare "sha256" hex digest."""
    legacy = _with(checksum=..., sha256="cd" * 32)
    assert Reference.from_json(legacy) == dataclasses.replace(REF, checksum="sha256:" + "cd" * 32)


def test_json_leads_with_readable_fields() -> None:
    assert list(REF.to_json())[:3] == [TAG, "summary", "type"]


def _with(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(REF.to_json())
    for name, value in changes.items():
        if value is ...:
            del data[name]
        else:
            data[name] = value
    return data


@pytest.mark.parametrize(
    "data",
    [
        {TAG: 1},
        _with(**{TAG: 2}),
        _with(**{TAG: "1"}),
        _with(**{TAG: None}),
        *(_with(**{name: ...}) for name in FIELDS),
        *(_with(**{name: None}) for name in FIELDS),
        _with(uri=42),
        _with(size=-1),
        _with(size=1.0),
        _with(size=True),
        _with(stored_bytes="987"),
        _with(checksum="blake3:" + "AB" * 32),
        _with(checksum="blake3:" + "ab" * 31),
        _with(checksum="blake3:" + "ab" * 33),
        _with(checksum="blake3:" + "zz" * 32),
        _with(checksum="md5:" + "ab" * 32),
        _with(checksum="ab" * 32),
        _with(checksum=["blake3", "ab" * 32]),
        _with(checksum=..., sha256="AB" * 32),
        _with(checksum=..., sha256="ab" * 31),
        _with(checksum=..., sha256=32),
        _with(uri="s3://b/" + "x" * 5000),
        _with(replicas="s3://b/x"),
        _with(replicas=[1]),
        _with(replicas=[None]),
        _with(replicas=["s3://b/" + "x" * 5000]),
        _with(replicas={"a": "b"}),
        _with(expires=3),
        _with(expires=["2024"]),
    ],
)
def test_malformed_reference_refused(data: dict[str, Any]) -> None:
    assert is_reference(data)
    with pytest.raises(ForgedReferenceError):
        Reference.from_json(data)


@pytest.mark.parametrize(
    "data",
    [
        _with(checksum="blake3:" + "ab" * 32 + "\n"),
        _with(checksum=..., sha256="ab" * 32 + "\n"),
        _with(**{TAG: True}),
        _with(**{TAG: 1.0}),
    ],
    ids=["checksum-newline", "sha256-newline", "version-true", "version-float"],
)
def test_almost_valid_reference_refused(data: dict[str, Any]) -> None:
    with pytest.raises(ForgedReferenceError):
        Reference.from_json(data)


@pytest.mark.parametrize(
    "data",
    [None, 1, "text", [TAG], {"uri": REF.uri}, {"xcomstore": 1}, ["__xcomstore__", 1], f'{{"{TAG}": 1}}'],
)
def test_user_data_is_not_a_reference(data: Any) -> None:
    assert not is_reference(data)
    with pytest.raises(ForgedReferenceError, match="not an xcomstore reference"):
        Reference.from_json(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)
# Values of the right types now and then, so that parsing gets past its first checks.
FIELD_VALUES = (
    JSON
    | st.integers(min_value=-5, max_value=2**70)
    | st.sampled_from(["ab" * 32, "AB" * 32, "ab" * 32 + "\n", "", REF.uri, "x" * 5000])
)
TAGGED = st.fixed_dictionaries(
    {TAG: st.sampled_from([1, 1, 1, 0, 2, "1", None, True]) | JSON},
    optional={
        **dict.fromkeys(FIELDS, FIELD_VALUES),
        "replicas": st.lists(st.text(max_size=20) | JSON, max_size=3) | FIELD_VALUES,
        "expires": st.none() | st.text(max_size=30) | FIELD_VALUES,
    },
).flatmap(lambda d: st.dictionaries(st.text(max_size=5), JSON, max_size=3).map(lambda extra: {**extra, **d}))


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid reference with a few fields replaced, removed or added."""
    data: dict[str, Any] = dataclasses.replace(
        REF, replicas=("s3://b/r.xcs",), expires="2030-01-01"
    ).to_json()
    for name in draw(st.lists(st.sampled_from([*FIELDS, "replicas", "expires", TAG]), max_size=3)):
        if draw(st.booleans()):
            data.pop(name, None)
        elif name == "replicas":
            data[name] = draw(st.lists(st.text(max_size=20) | JSON, max_size=3) | FIELD_VALUES)
        else:
            data[name] = draw(FIELD_VALUES)
    data.update(draw(st.dictionaries(st.text(max_size=5), JSON, max_size=2)))
    return data


@FUZZ
@given(JSON)
def test_fuzz_untagged_json_is_not_a_reference(data: Any) -> None:
    if isinstance(data, dict) and TAG in data:
        return
    assert not is_reference(data)
    with pytest.raises(ForgedReferenceError):
        Reference.from_json(data)


@FUZZ
@given(TAGGED | near_valid() | JSON)
@example(REF.to_json())
@example(_with(extra={"nested": [1, 2]}))
def test_fuzz_from_json_gives_reference_or_refuses(data: Any) -> None:
    try:
        ref = Reference.from_json(data)
    except ForgedReferenceError:
        return
    assert isinstance(ref, Reference)
    again = Reference.from_json(ref.to_json())  # an empty replicas list or expiry is dropped
    assert again.to_json() == ref.to_json()
    assert dataclasses.replace(again, expires=ref.expires) == ref
    assert ref.size >= 0
    assert ref.stored_bytes >= 0
