"""A push for an XCom Airflow would refuse, or read back under another name, is refused up
front with a RejectedValueError naming the XCom, and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from xcomstore.core.store import XComStore
from xcomstore.errors import RejectedValueError
from xcomstore.identity import Origin

MakeStore = Callable[..., XComStore]

REFUSED: dict[str, tuple[dict[str, object], str]] = {
    "lone-surrogate-key": ({"key": "a\ud800b"}, "lone surrogate"),
    "lone-surrogate-run": ({"run_id": "run\udfff"}, "run_id holds a lone surrogate"),
    "nul-in-key": ({"key": "a\x00b"}, "control character"),
    "newline-in-key": ({"key": "a\nb"}, "control character"),
    "del-in-key": ({"key": "a\x7fb"}, "control character"),
    "c1-in-key": ({"key": "a\x85b"}, "control character"),
    "tab-in-run": ({"run_id": "run\t1"}, "run_id holds a control character"),
    "empty-key": ({"key": ""}, "non-empty"),
    "dot-dot-segment": ({"key": "a/../b"}, r"'\.\.' segment"),
    "dot-dot-key": ({"key": ".."}, r"'\.\.' segment"),
    "dot-segment": ({"key": "./a"}, r"'\.' or"),
    "question-mark": ({"key": "a?b"}, r"'\?' or '#'"),
    "hash": ({"key": "a#b"}, r"'\?' or '#'"),
    "percent-escape": ({"key": "a%2Fb"}, "escape"),
    "item-route": ({"key": "rows/item/3"}, "/item/<n>"),
    "slice-route": ({"key": "rows/slice"}, "/slice"),
    "long-key": ({"key": "k" * 513}, "at most 512"),
    "map-index-minus-2": ({"map_index": -2}, "map_index -2"),
    "task-id-with-space": ({"task_id": "my task"}, "task_id may hold only"),
    "dag-id-with-slash": ({"dag_id": "a/b"}, "dag_id may hold only"),
}


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("threshold", ["0", "1000000"], ids=["offloaded", "inline"])
def test_a_push_to_an_xcom_airflow_cannot_serve_is_refused(
    case: str,
    threshold: str,
    make_xcom_store: MakeStore,
    make_origin: Callable[..., Origin],
    store_dir: Path,
) -> None:
    fields, says = REFUSED[case]
    origin = make_origin(**fields)
    with pytest.raises(RejectedValueError, match=says) as info:
        make_xcom_store(threshold=threshold).push({"rows": [1, 2, 3]}, origin)
    assert "Nothing was stored" in str(info.value)
    assert repr(origin.task_id) in str(info.value)  # the XCom is named, printably
    assert not store_dir.exists() or not any(p.is_file() for p in store_dir.rglob("*"))


@pytest.mark.parametrize(
    "fields",
    [
        {"key": "a/b"},  # Airflow routes keys as {key:path}: a slash is fine
        {"key": "a b é ☃"},
        {"key": "100%"},
        {"key": "items/3"},
        {"key": "k" * 512},
        {"run_id": "manual__2026-01-01T00:00:00+00:00"},
        {"task_id": "group.task-1"},
        {"map_index": 0},
    ],
)
def test_xcoms_airflow_serves_still_push_and_pull(
    fields: dict[str, object], make_xcom_store: MakeStore, make_origin: Callable[..., Origin]
) -> None:
    store = make_xcom_store(threshold="0")
    stored = store.push({"rows": [1]}, make_origin(**fields))
    assert store.pull(stored) == {"rows": [1]}
