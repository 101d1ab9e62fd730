"""layout: every XCom gets its own safe, bounded, decodable object path."""

from __future__ import annotations

import posixpath
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from xcomstore.core.layout import (
    EMPTY,
    MAX_SEGMENT,
    SUFFIX,
    check_relative_path,
    decode_segment,
    encode_segment,
    object_path,
    origin_of,
    run_prefix,
)
from xcomstore.errors import ForgedReferenceError
from xcomstore.identity import Origin

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=5),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NASTY = [
    "/",
    "..",
    ".",
    "~",
    "%",
    "%2E",
    "%7E",
    "~0123456789abcdef",
    "\\",
    "\0",
    "\n",
    " ",
    "é",
    "日本",
    "🦀",
    "-",
]
# Text that exercises escaping: the default alphabet, path syntax, and very long names.
TEXTS = (
    st.text()
    | st.lists(st.sampled_from(NASTY), max_size=8).map("".join)
    | st.text(alphabet=st.sampled_from(["a", "/", ".", "~", "%", "é", "🦀"]), min_size=100, max_size=400)
    | st.text(st.characters(blacklist_categories=()), max_size=20)  # lone surrogates included
    | st.builds(lambda head, tail: head + tail, st.sampled_from(["x" * 200, "é" * 150]), st.text(max_size=5))
)


def segment_fits_a_path(segment: str) -> bool:
    """What check_relative_path accepts in the key position of an otherwise valid path."""
    try:
        check_relative_path(f"dag/run/task/-1/{segment}{SUFFIX}")
        check_relative_path(f"{segment}/run/task/0/key{SUFFIX}")
    except ForgedReferenceError:
        return False
    return True


@FUZZ
@given(TEXTS)
@example("")
@example(".")
@example("..")
@example(".hidden")
@example("a/../../etc/passwd")
@example("~")
@example("%" * 200)
@example("é" * 500)
@example("x" * 103 + "é")
def test_encode_segment_is_safe(text: str) -> None:
    segment = encode_segment(text)
    assert segment
    assert "/" not in segment
    assert not segment.startswith(".")
    assert len(segment) <= MAX_SEGMENT
    assert segment.isascii()
    assert segment.isprintable()
    assert segment_fits_a_path(segment)


def shortened(text: str) -> bool:
    segment = encode_segment(text)
    return "~" in segment and segment != EMPTY


@FUZZ
@given(TEXTS)
def test_decode_segment_inverts_short_segments(text: str) -> None:
    segment = encode_segment(text)
    if shortened(text):
        assert decode_segment(segment).endswith("…")  # shortened: only the head comes back
    else:
        assert decode_segment(segment) == text


@FUZZ
@given(TEXTS, TEXTS)
def test_encode_segment_is_injective(first: str, second: str) -> None:
    assume(first != second)
    assert encode_segment(first) != encode_segment(second)


@FUZZ
@given(st.text(min_size=200, max_size=200), st.text(max_size=50), st.text(max_size=50))
def test_long_texts_sharing_a_head_differ(head: str, first: str, second: str) -> None:
    assume(first != second)
    assert encode_segment(head + first) != encode_segment(head + second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("", "~"),
        (".", "%2E"),
        ("~", "%7E"),
        ("a b", "a%20b"),
        ("x" * 300, "x" * 301),
        ("x" * 200 + "a", "x" * 200 + "b"),
        ("é" * 200, "é" * 199 + "e"),
    ],
)
def test_known_near_collisions_differ(first: str, second: str) -> None:
    assert encode_segment(first) != encode_segment(second)


def test_long_segment_keeps_readable_head() -> None:
    segment = encode_segment("report_" * 50)
    assert segment.startswith("report_report_")
    assert len(segment) == MAX_SEGMENT
    assert decode_segment(segment).startswith("report_report_")


@pytest.mark.parametrize("text", ["key\udc80", "\ud800", "a\udfffb", "\ud83d\ude00"])
def test_encode_segment_lone_surrogate(text: str) -> None:
    segment = encode_segment(text)
    assert segment_fits_a_path(segment)
    assert decode_segment(segment) == text


def test_surrogate_pair_differs_from_the_character() -> None:
    assert encode_segment("\ud83d\ude00") != encode_segment("😀")


@pytest.mark.parametrize("width", [98, 99, 100])
@pytest.mark.parametrize("char", ["é", "€", "🦀"])
def test_shortened_head_cut_inside_a_character(width: int, char: str) -> None:
    text = "x" * width + char * 40
    segment = encode_segment(text)
    assert len(segment) <= MAX_SEGMENT
    decoded = decode_segment(segment)
    assert decoded.startswith("x" * width)
    assert decoded.endswith("…")
    origin = origin_of(object_path(Origin(dag_id="dag", run_id="run", task_id="task", map_index=1, key=text)))
    assert origin.key == decoded


ORIGINS = st.builds(
    Origin,
    dag_id=TEXTS,
    run_id=TEXTS,
    task_id=TEXTS,
    map_index=st.integers(-1, 10**6),
    key=TEXTS,
)


@FUZZ
@given(ORIGINS)
def test_object_path_is_valid_and_decodable(origin: Origin) -> None:
    path = object_path(origin)
    assert check_relative_path(path) == path
    assert posixpath.normpath(path) == path
    assert path.endswith(SUFFIX)
    assert len(path) <= 5 * MAX_SEGMENT + 4 + len(SUFFIX)
    decoded = origin_of(path)
    assert decoded.map_index == origin.map_index
    if not any(shortened(s) for s in (origin.dag_id, origin.run_id, origin.task_id, origin.key)):
        assert decoded == origin


@FUZZ
@given(ORIGINS, ORIGINS)
def test_object_paths_are_distinct(first: Origin, second: Origin) -> None:
    assume(first != second)
    assert object_path(first) != object_path(second)


@pytest.mark.parametrize(
    "origin",
    [
        Origin(dag_id="dag", run_id="run", task_id="task", map_index=-1, key="return_value"),
        Origin(
            dag_id="my.dag",
            run_id="manual__2024-05-01T12:00:00+00:00",
            task_id="group.task",
            map_index=12,
            key="key with space",
        ),
        Origin(dag_id="", run_id="", task_id="", map_index=0, key=""),
        Origin(dag_id="../..", run_id="/etc", task_id="~root", map_index=3, key=".ssh"),
    ],
)
def test_object_path_round_trip(origin: Origin) -> None:
    assert origin_of(object_path(origin)) == origin


def test_object_path_example() -> None:
    path = object_path(
        Origin(
            dag_id="dag",
            run_id="scheduled__2024-05-01T00:00:00+00:00",
            task_id="task",
            map_index=-1,
            key="return_value",
        )
    )
    assert path == "dag/scheduled__2024-05-01T00%3A00%3A00%2B00%3A00/task/-1/return_value.xcs"


def test_run_prefix_is_a_prefix_of_object_paths() -> None:
    origin = Origin(dag_id="d/ag", run_id="r.un", task_id="task", map_index=2, key="k")
    assert object_path(origin).startswith(run_prefix("d/ag") + "/")
    assert object_path(origin).startswith(run_prefix("d/ag", "r.un") + "/")
    assert run_prefix("d/ag") == "d%2Fag"


@pytest.mark.parametrize(
    "path",
    [
        "",
        ".",
        "..",
        "/dag/run/task/-1/key.xcs",
        "dag/run/task/-1/../../../../etc/passwd.xcs",
        "dag/../dag/run/task/-1/key.xcs",
        "dag/run/task/-1/./key.xcs",
        "dag//run/task/-1/key.xcs",
        "dag/run/task/-1/key.xcs/",
        "dag/run/task/-1",
        "dag/run/task/key.xcs",
        "dag/run/task/-1/extra/key.xcs",
        "dag/run/task/-1/key.txt",
        "dag/run/task/-1/key",
        "dag/run/task/x/key.xcs",
        "dag/run/task/-2/key.xcs",
        "dag/run/task/1.5/key.xcs",
        "dag/run/task/-1/.key.xcs",
        "dag/run/task/-1/.xcs",
        ".dag/run/task/-1/key.xcs",
        "dag/r un/task/-1/key.xcs",
        "dag/run/ta~sk/-1/key.xcs",
        "dag/run/task~0123/-1/key.xcs",
        "dag/run/task/-1/k\\ey.xcs",
        "dag/run/tâsk/-1/key.xcs",
        "dag/run/task/-1/key.xcs.tmp",
    ],
)
def test_check_relative_path_refuses(path: str) -> None:
    with pytest.raises(ForgedReferenceError):
        check_relative_path(path)
    with pytest.raises(ForgedReferenceError):
        origin_of(path)


def test_check_relative_path_refuses_trailing_newline_in_segment() -> None:
    with pytest.raises(ForgedReferenceError):
        check_relative_path("dag\n/run/task/-1/key.xcs")


@pytest.mark.parametrize(
    "path",
    [
        "dag/run/task/-1/key.xcs",
        "~/~/~/0/~.xcs",
        "%2E%2E/run/task/7/%2Essh.xcs",
        f"{'a' * 103}~0123456789abcdef/r/t/1/k.xcs",
    ],
)
def test_check_relative_path_accepts(path: str) -> None:
    assert check_relative_path(path) == path
