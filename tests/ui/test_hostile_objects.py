"""Hostile objects never crash the preview, the downloads or the plugin, and cost little.

Whoever can write to the bucket can write any bytes and reseal them (the seal is unkeyed), so
these objects pass every checksum: string offsets pointing outside their data (which made the
preview and the CSV download segfault inside the API server), a .npy header claiming 16 MiB
elements (an 8 KB object whose preview took 1.2 GiB), Arrow messages claiming huge bodies or
buffers that expand to gigabytes, dictionary indices out of range, JSON nested too deep.

Each is previewed and downloaded in a child process under a 2 GiB address-space limit, through
ops.preview / ops.export and through the plugin's FastAPI app (starlette's TestClient, no
server): the child must live, and each answer be a value or an xcomstore error naming the
object — for the app, its error page or JSON error with status 502 (or 400 for a table CSV
cannot hold).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.faults import hostile
from tests.fuzz import mutate

from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.identity import Origin
from xcomstore.ops import preview as preview_module
from xcomstore.ops.export import download
from xcomstore.ops.preview import preview

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20
STRINGS = pa.table({"s": ["alpha", "beta", None, "delta"] * 50, "n": list(range(200))})
FRAME = pd.DataFrame({"s": ["x" * (i % 9) for i in range(300)], "f": [i / 7 for i in range(300)]})
# name: (value, compression, mutations of its payload (tests/fuzz/mutate.py), formats to fetch)
HOSTILE: dict[str, tuple[Any, str, list[mutate.Mutation], tuple[str, ...]]] = {
    "string-offsets-past-the-data": (STRINGS, "zstd", [("arrow_offsets", 0, 3, 1 << 30)], ("csv", "parquet")),
    "string-offsets-negative": (STRINGS, "lz4", [("arrow_offsets", 0, 7, -(1 << 20))], ("csv", "parquet")),
    "pandas-offsets-past-the-data": (FRAME, "none", [("arrow_offsets", 0, 100, 1 << 28)], ("csv", "parquet")),
    "dictionary-index-out-of-range": (
        pa.table({"d": pa.array(["a", "b"] * 50).dictionary_encode()}),
        "zstd",
        [("arrow_offsets", 0, 5, 1000)],
        ("csv", "parquet"),
    ),
    "message-claims-a-huge-body": (
        STRINGS,
        "none",
        [("arrow_meta", 1, 0, "set", 1 << 40)],
        ("csv", "parquet"),
    ),
    "buffer-expands-to-gigabytes": (
        STRINGS,
        "zstd",
        [("arrow_buffer", 1, 0, 8, 1 << 31)],
        ("csv", "parquet"),
    ),
    "npy-void-16-mib-elements": (np.arange(16.0), "zstd", [("npy_header", "descr", 0)], ("npy",)),
    "npy-huge-shape": (np.arange(16.0), "none", [("npy_header", "shape", 5)], ("npy",)),  # shown
    "npy-object-dtype": (np.arange(16.0), "gzip", [("npy_header", "descr", 4)], ("npy",)),
    "json-nested-too-deep": ({"a": [1, 2]}, "zstd", [("json_deep", 100_000, 0)], ("json",)),
    # A damaged gzip stream raises an OSError, which is no store failure to report or retry.
    "gzip-not-gzip": (b"payload " * 100, "gzip", [("run", "stored", 0, 4, 0)], ("bin",)),
}


AS_STORED = ("npy", "json", "bin", "arrows")  # downloads that copy the verified payload
# Previews that show what there is: 16 elements of an array claiming 2**40, a JSON text.
SHOWN = ("npy-huge-shape", "json-nested-too-deep")
UNREADABLE = ("gzip-not-gzip",)  # refused by every step, even a copy: it does not decompress


def _put(root: Path, name: str, value: Any, compression: str, mutations: list[mutate.Mutation]) -> str:
    """Push `value`, then replace its object by the resealed mutant; the object's URI."""
    settings = Settings.from_mapping({"path": f"file://{root}", "threshold": "0", "compression": compression})
    store = XComStore.from_settings(settings)
    reference = store.push(value, Origin(dag_id="dag", run_id="run", task_id="t", map_index=-1, key=name))
    path = root / store.location.relative(reference["uri"])
    data = path.read_bytes()
    hostile = mutate.apply(data, mutations)
    assert hostile != data, f"{name}: the mutation changed nothing"
    path.write_bytes(hostile)
    return str(reference["uri"])


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    for name, (value, compression, mutations, _) in HOSTILE.items():
        _put(root, name, value, compression, mutations)
    return root


# The child: what it runs, printed one JSON line per step, so that a crash names its step.
CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from xcomstore.core.settings import Settings
    from xcomstore.core.store import XComStore
    from xcomstore.errors import XComStoreError

    root, mode, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    store = XComStore.from_settings(Settings.from_mapping({"path": f"file://{root}", "threshold": "0"}))

    def peak():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmHWM:"))

    def reset():
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))

    if mode == "ops":
        from xcomstore.ops.export import download
        from xcomstore.ops.preview import preview

        def step(uri, what):
            if what == "preview":
                return len(json.dumps(preview(store, uri, rows=100).to_json()))
            return sum(len(c) for c in download(store, uri, what).chunks)

        for name, formats in cases.items():
            uri = store.location.uri(f"dag/run/t/-1/{name}.xcs")
            for what in ["preview", *formats]:
                print(json.dumps({"case": name, "step": what, "start": True}), flush=True)
                before = reset()
                try:
                    result = {"size": step(uri, what)}
                except XComStoreError as exc:
                    result = {"error": type(exc).__name__, "message": str(exc)}
                result.update(case=name, step=what, peak=peak() - before, uri=uri)
                print(json.dumps(result), flush=True)
    else:
        from fastapi.testclient import TestClient
        from xcomstore.airflow.plugin import app as plugin
        from xcomstore.airflow.plugin.source import StoreBrowser

        application = plugin.create_app()
        application.dependency_overrides[plugin.get_browser] = lambda: StoreBrowser(store)
        application.dependency_overrides[plugin.CanReadXComs.dependency] = lambda: None
        client = TestClient(application, raise_server_exceptions=False)
        for name, formats in cases.items():
            query = {"run_id": "run", "task_id": "t", "key": name}
            paths = [("page", "/dags/dag/xcom", query), ("api", "/api/dags/dag/xcom", query)]
            paths += [(f, "/dags/dag/download", {**query, "format": f}) for f in formats]
            for what, path, params in paths:
                print(json.dumps({"case": name, "step": what, "start": True}), flush=True)
                before = reset()
                response = client.get(path, params=params)
                result = {"status": response.status_code, "body": response.text[-3000:], "size": len(response.content)}
                result.update(case=name, step=what, peak=peak() - before)
                print(json.dumps(result), flush=True)
    """
)


def _child(root: Path, mode: str, cases: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Run the child; its results, after checking it lived and answered every step."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), mode, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    last = lines[-1] if lines else {}
    assert done.returncode == 0, (
        f"the child died ({done.returncode}) in {last.get('case')} / {last.get('step')}:\n{done.stderr[-3000:]}"
    )
    results = [line for line in lines if not line.get("start")]
    steps = sum(len(formats) + (1 if mode == "ops" else 2) for formats in cases.values())
    assert len(results) == steps, done.stderr[-3000:]
    return results


def _cases() -> dict[str, tuple[str, ...]]:
    return {name: formats for name, (_, _, _, formats) in HOSTILE.items()}


def test_previews_and_downloads_of_hostile_objects_are_refused(hostile_store: Path) -> None:
    for result in _child(hostile_store, "ops", _cases()):
        where = f"{result['case']} / {result['step']}"
        assert result["peak"] < 200 * MIB, f"{where}: {result['peak'] / MIB:.0f} MiB"
        if (result["step"] in AS_STORED or result["case"] in SHOWN) and result["case"] not in UNREADABLE:
            assert "size" in result, where  # served as stored, verified: never decoded here
            assert result["step"] != "preview" or result["size"] < 64 * 1024, where
            continue
        assert result.get("error") in ("ObjectFormatError", "CorruptObjectError", "UnknownFormatError"), (
            where,
            result,
        )
        assert result["uri"] in result["message"], f"{where}: the error does not name the object"


def test_the_plugin_answers_hostile_objects_with_its_error_page(hostile_store: Path) -> None:
    for result in _child(hostile_store, "app", _cases()):
        where = f"{result['case']} / {result['step']}"
        assert result["peak"] < 200 * MIB, f"{where}: {result['peak'] / MIB:.0f} MiB"
        if (result["step"] in AS_STORED or result["case"] in SHOWN) and result["case"] not in UNREADABLE:
            assert result["status"] == 200, (where, result["body"][:300])
            continue
        assert result["status"] in (400, 502), (where, result["status"], result["body"][:300])
        assert f"{result['case']}.xcs" in result["body"], f"{where}: the error does not name the object"
        if result["step"] == "page":
            assert "<h1>Error" in result["body"], where


# -- bounds on valid objects -------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> XComStore:
    return XComStore.from_settings(Settings.from_mapping({"path": f"file://{tmp_path}", "threshold": "0"}))


def _uri(store: XComStore, value: Any, key: str = "k") -> str:
    return str(
        store.push(value, Origin(dag_id="dag", run_id="run", task_id="t", map_index=-1, key=key))["uri"]
    )


def test_a_preview_shows_at_most_100_rows_and_200_characters_a_cell(store: XComStore) -> None:
    table = pa.table(
        {
            "long": ["é" * 5000] * 300,
            "blob": [b"\x00" * 1000] * 300,
            "items": [list(range(2000))] * 300,
            "n": list(range(300)),
        }
    )
    shown = preview(store, _uri(store, table), rows=1000)
    assert len(shown.rows) == preview_module.MAX_ROWS
    for row in shown.rows:
        for cell in row[:3]:
            assert isinstance(cell, str)
            assert len(cell) <= preview_module.CELL_CHARS
            assert "…" in cell
    assert shown.rows[5][3] == 5
    assert shown.rows[0][2].startswith("[0, 1, 2")
    assert shown.rows[0][1].startswith("00 00 00")  # bytes as hex


def test_an_array_preview_reads_only_its_start(store: XComStore) -> None:
    array = np.arange(4_000_000, dtype=np.float64)  # 32 MB: more than a preview reads
    shown = preview(store, _uri(store, array), rows=5)
    assert shown.rows == [[0.0, 1.0, 2.0, 3.0, 4.0]]
    assert shown.stats["min"] == 0.0
    assert shown.stats["range_of"] == preview_module.PREVIEW_BYTES // 8
    assert shown.stats["max"] == preview_module.PREVIEW_BYTES // 8 - 1


def test_a_batch_over_the_preview_bound_is_refused_naming_the_object(store: XComStore) -> None:
    from xcomstore.errors import ObjectFormatError

    uri = _uri(store, pa.table({"items": [list(range(10_000))] * 1024}))  # one 40 MB batch
    with pytest.raises(ObjectFormatError, match="16777216") as refused:
        preview(store, uri)
    assert uri in str(refused.value)


def test_csv_refuses_nested_columns_before_streaming(store: XComStore) -> None:
    from xcomstore.errors import UnknownFormatError

    uri = _uri(store, pa.table({"l": [[1], [2, 3]]}))
    with pytest.raises(UnknownFormatError, match="nested columns"):
        download(store, uri, "csv")
    assert b"".join(download(store, uri, "parquet").chunks).startswith(b"PAR1")


# -- a download damaged after its first batch -------------------------------------------------
def _later_batch_damaged(root: Path, name: str) -> None:
    """A table whose first batch is sound and whose second has string offsets past its data:
    the download has started (its first piece was sent) when the damage is reached. A version 3
    object (one Arrow stream, as tables were written before blocks), sealed as written."""
    settings = Settings.from_mapping({"path": f"file://{root}", "threshold": "0"})
    store = XComStore.from_settings(settings)
    origin = Origin(dag_id="dag", run_id="run", task_id="t", map_index=-1, key=name)
    good = pa.record_batch({"s": pa.array(["a", "bb"] * 100)})
    offsets = np.arange(201, dtype=np.int32)
    offsets[100] = 1 << 30  # a middle one: pyarrow checks only the last as it builds the array
    data = good.column(0).buffers()[2]
    bad = pa.Array.from_buffers(pa.string(), 200, [None, pa.py_buffer(offsets.tobytes()), data])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, good.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_batch(good)
        writer.write_batch(pa.record_batch([bad], names=["s"]))
    payload = sink.getvalue().to_pybytes()
    hostile.write_stream_table(store, origin, pa.table({"s": ["a", "bb"]}), lambda out: out.write(payload))


def test_a_batch_damaged_later_ends_the_download_with_an_error(tmp_path: Path) -> None:
    _later_batch_damaged(tmp_path, "later")
    results = {r["step"]: r for r in _child(tmp_path, "ops", {"later": ("csv", "parquet")})}
    assert "size" in results["preview"], results["preview"]  # the first batch is shown
    for fmt in ("csv", "parquet"):
        assert results[fmt].get("error") == "ObjectFormatError", results[fmt]
        assert "Arrow record batch is invalid" in results[fmt]["message"]
