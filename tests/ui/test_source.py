"""The plugin's store views without a server: listings that stay inside one DAG and run, names
the path shortens, objects whose header names another XCom, and streamed downloads."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xcomstore.airflow.plugin import views
from xcomstore.airflow.plugin.source import StoreBrowser
from xcomstore.core import layout
from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import UnknownFormatError
from xcomstore.identity import Origin
from xcomstore.ops.export import download


@pytest.fixture
def store(tmp_path: Path) -> XComStore:
    settings = Settings.from_mapping({"path": f"file://{tmp_path / 'store'}", "threshold": "0"})
    return XComStore.from_settings(settings)


def _push(
    store: XComStore, value: object, dag: str = "dag", run: str = "run", task: str = "t", key: str = "k"
) -> str:
    ref = store.push(value, Origin(dag_id=dag, run_id=run, task_id=task, map_index=-1, key=key))
    return str(ref["uri"])


def test_listings_keep_to_their_dag_and_run(store: XComStore) -> None:
    _push(store, {"a": 1}, dag="sales")
    _push(store, {"a": 2}, dag="sales_forecast")
    _push(store, {"a": 3}, dag="sales", run="run2")
    _push(store, {"a": 4}, dag="sales", run="run", task="u", key="other")
    browser = StoreBrowser(store)
    assert browser.dag_ids() == ["sales", "sales_forecast"]
    assert sorted(r.run_id for r in browser.runs("sales")) == ["run", "run2"]
    assert [(e.origin.task_id, e.origin.key) for e in browser.xcoms("sales", "run")] == [
        ("t", "k"),
        ("u", "other"),
    ]
    assert [e.origin.key for e in browser.xcoms("sales", "run", task_id="u")] == ["other"]
    assert browser.xcoms("sale", "run") == []


def test_long_names_come_from_the_headers(store: XComStore) -> None:
    dag, run = "d" * 200, "manual__" + "r" * 240  # Airflow keeps ids to 250 characters
    _push(store, [1, 2, 3], dag=dag, run=run)
    assert "~" in layout.object_path(
        Origin(dag_id=dag, run_id=run, task_id="t", map_index=-1, key="k")
    )  # the path shortens both
    browser = StoreBrowser(store)
    assert browser.dag_ids() == [dag]
    assert [r.run_id for r in browser.runs(dag)] == [run]
    assert [e.origin.run_id for e in browser.xcoms(dag, run)] == [run]


def test_an_object_naming_another_xcom_is_shown_unreadable(store: XComStore, tmp_path: Path) -> None:
    uri = _push(store, {"secret": 1}, dag="other")
    target = tmp_path / "store" / "dag" / "run" / "t" / "-1" / "k.xcs"
    target.parent.mkdir(parents=True)
    shutil.copyfile(store.location.fs._strip_protocol(uri), target)
    [entry] = StoreBrowser(store).xcoms("dag", "run")
    assert entry.header is None
    assert entry.error is not None
    assert "holds XCom other/run/t/k" in entry.error


def test_uri_is_computed_from_the_origin(store: XComStore) -> None:
    uri = StoreBrowser(store).uri(
        Origin(dag_id="dag", run_id="../x", task_id="t", map_index=-1, key="k/../../y")
    )
    assert store.location.relative(uri).split("/")[1:] == ["%2E.%2Fx", "t", "-1", "k%2F..%2F..%2Fy.xcs"]


def test_downloads_stream_every_format(store: XComStore) -> None:
    frame = pd.DataFrame({"n": range(200_000), "s": ["x"] * 200_000})
    uri = _push(store, frame)
    parquet = b"".join(download(store, uri, None).chunks)
    assert pq.read_table(io.BytesIO(parquet)).to_pandas().equals(frame)
    csv = download(store, uri, "csv")
    pieces = list(csv.chunks)
    assert len(pieces) > 2  # written record batch by record batch
    assert b"".join(pieces).count(b"\n") == 200_001
    ipc = b"".join(download(store, uri, "arrows").chunks)
    assert pa.ipc.open_stream(ipc).read_all().num_rows == 200_000
    array = np.arange(12.0).reshape(3, 4)
    npy = b"".join(download(store, _push(store, array, key="a"), None).chunks)
    np.testing.assert_array_equal(np.load(io.BytesIO(npy)), array)
    with pytest.raises(UnknownFormatError):
        download(store, uri, "npy")


def test_content_disposition_is_ascii_safe(store: XComStore) -> None:
    found = download(store, _push(store, b"\x00" * 10, key='dé"jà'), None)
    header = found.content_disposition()
    assert header.isascii()
    assert "filename*=UTF-8''dag.t.d%C3%A9%22j%C3%A0.bin" in header


def test_map_index_from_the_airflow_ui() -> None:
    assert views.map_index("3") == 3
    assert views.map_index("-1") == -1
    assert views.map_index("{MAP_INDEX}") is None
    assert views.map_index(None) is None


def test_listings_cover_every_routed_location(tmp_path: Path) -> None:
    routes = f"dag_id=finance -> file://{tmp_path / 'finance'}; key=copied -> file://{tmp_path / 'a'}, file://{tmp_path / 'b'}"
    raw = {"path": f"file://{tmp_path / 'store'}", "routes": routes, "threshold": "0"}
    store = XComStore.from_settings(Settings.from_mapping(raw))
    finance = _push(store, {"a": 1}, dag="finance")
    _push(store, {"a": 2}, dag="sales")
    copied = _push(store, {"a": 3}, dag="sales", key="copied")  # in a and b: listed once
    browser = StoreBrowser(store)
    assert browser.dag_ids() == ["finance", "sales"]
    assert [(r.run_id, r.objects) for r in browser.runs("sales")] == [("run", 2)]
    assert [e.uri for e in browser.xcoms("sales", "run")][:1] == [copied]  # keys sort: copied, k
    assert [e.uri for e in browser.xcoms("finance", "run")] == [finance]
    origin = Origin(dag_id="finance", run_id="run", task_id="t", map_index=-1, key="k")
    assert browser.uri(origin) == finance
