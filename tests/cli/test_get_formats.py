"""`xcomstore get` writes what is asked: the output's extension picks the format (--format
overrides it), a table big enough to span several record batches is written whole and equal to
the value, an impossible pairing exits 2 with one line naming the formats that fit, and nothing
— not even a partial file — is left by a failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.lifecycle.stores import Place, RawObjects, flip_payload_byte, make_store, origin, run_cli

ROWS = 300_000  # ~7 MB of Arrow: several of the codec's ~4 MiB record batches


def frame(rows: int = ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "x": rng.random(rows),
            "name": [f'row {i}, "quoted"' for i in range(rows)],
            "flag": np.arange(rows) % 3 == 0,
        }
    )


def push(place: Place, value: Any, key: str = "value", **options: str) -> str:
    store = make_store([place.url], place.opener, **options)
    return str(store.push(value, origin(key=key))["uri"])


def get(capsys: pytest.CaptureFixture[str], place: Place, *args: str) -> tuple[int, str, str]:
    done = run_cli(capsys, "--path", place.url, "get", *args)
    return done.code, done.out, done.err


def said(err: str) -> list[str]:
    """The CLI's own lines on stderr (Airflow's provider hooks may log there too)."""
    return [line for line in err.splitlines() if line.startswith(("xcomstore", "Traceback"))]


def files(folder: Path) -> list[str]:
    """Every file in `folder`, hidden (temporary) ones included."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    return frame()


# -- tables ------------------------------------------------------------------------------------
def read_table(path: Path, ext: str) -> pd.DataFrame:
    if ext == ".parquet":
        return pq.read_table(path).to_pandas()
    if ext in (".arrow", ".feather"):
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all().to_pandas()
    if ext == ".arrows":
        with path.open("rb") as source:
            return pa.ipc.open_stream(source).read_all().to_pandas()
    if ext == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    if ext == ".json":
        return pd.DataFrame.from_records(json.loads(path.read_text()))
    assert ext == ".jsonl"
    return pd.DataFrame.from_records([json.loads(line) for line in path.read_text().splitlines()])


@pytest.mark.parametrize("ext", [".parquet", ".arrow", ".feather", ".arrows", ".csv", ".json", ".jsonl"])
def test_a_table_is_written_whole_in_the_format_its_extension_names(
    place: Place, work: Path, big: pd.DataFrame, capsys: pytest.CaptureFixture[str], ext: str
) -> None:
    uri = push(place, big, compression="zstd")
    code, out, err = get(capsys, place, uri, "-o", f"frame{ext}")
    assert code == 0, err
    assert f"wrote frame{ext}" in out
    assert files(work) == [f"frame{ext}"]
    back = read_table(work / f"frame{ext}", ext)
    pd.testing.assert_frame_equal(back, big, check_dtype=ext not in (".json", ".jsonl"))
    if ext == ".json":  # records: one JSON array of objects
        assert (work / "frame.json").read_text().startswith('[\n{"id": 0, "x": ')


def test_format_overrides_the_extension(place: Place, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    value = frame(100)
    uri = push(place, value)
    code, _, err = get(capsys, place, uri, "-o", "frame.dat", "--format", "csv")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(work / "frame.dat", keep_default_na=False), value)
    code, _, err = get(capsys, place, uri, "--format", "jsonl")  # the default name takes the format
    assert code == 0, err
    assert len((work / "value.jsonl").read_text().splitlines()) == 100


def test_a_table_without_output_is_parquet(
    place: Place, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(place, frame(10))
    assert get(capsys, place, uri)[0] == 0
    assert pq.read_table(work / "value.parquet").num_rows == 10


# -- arrays, JSON values, bytes ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("array", "ext"),
    [
        (np.arange(200_000, dtype=np.float64) / 7, ".csv"),
        (np.arange(300_000, dtype=np.int32).reshape(100_000, 3), ".csv"),
        (np.asfortranarray(np.arange(12.0).reshape(3, 4)), ".csv"),
        (np.arange(24, dtype=np.int16).reshape(2, 3, 4), ".json"),
        (np.array([1.5, np.nan, np.inf]), ".json"),
        (np.arange(500_000, dtype=np.int64).reshape(1000, 500), ".npy"),
    ],
)
def test_an_array_is_written_in_the_format_its_extension_names(
    place: Place, work: Path, capsys: pytest.CaptureFixture[str], array: Any, ext: str
) -> None:
    uri = push(place, array)
    code, _, err = get(capsys, place, uri, "-o", f"feat{ext}")
    assert code == 0, err
    assert files(work) == [f"feat{ext}"]  # not feat.csv.npy
    path = work / f"feat{ext}"
    if ext == ".npy":
        back = np.load(path, allow_pickle=False)
        assert back.dtype == array.dtype
        assert np.array_equal(back, array)
    elif ext == ".csv":
        back = np.loadtxt(path, delimiter=",", dtype=array.dtype, ndmin=array.ndim)
        assert np.array_equal(back, array)
    else:
        expected = (
            [v if np.isfinite(v) else None for v in array] if array.dtype.kind == "f" else array.tolist()
        )
        assert json.loads(path.read_text()) == expected


def test_a_json_value_and_bytes(place: Place, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"rows": list(range(1000)), "name": "x"}
    assert get(capsys, place, push(place, doc, key="doc"), "-o", "doc.json")[0] == 0
    assert json.loads((work / "doc.json").read_text()) == doc
    payload = bytes(range(256)) * 100
    # Bytes are bytes: any name, the raw payload.
    assert get(capsys, place, push(place, payload, key="raw"), "-o", "raw.csv")[0] == 0
    assert (work / "raw.csv").read_bytes() == payload


# -- impossible pairings -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "args", "fits"),
    [
        (frame(10), ["-o", "frame.xlsx"], ".parquet, .arrow/.feather, .arrows, .csv, .json, .jsonl"),
        (frame(10), ["-o", "frame.npy"], ".parquet, .arrow/.feather"),
        (frame(10), ["-o", "frame"], ".parquet"),
        (frame(10), ["--format", "npy"], ".parquet"),
        (frame(10), ["--format", "bin", "-o", "frame.bin"], ".parquet"),
        (np.zeros((2, 2, 2)), ["-o", "cube.csv"], "npy or json"),
        (np.zeros(3), ["-o", "feat.parquet"], ".npy, .csv, .json"),
        ({"a": 1}, ["-o", "doc.csv"], ".json"),
        (b"raw", ["--format", "csv"], "bin"),
    ],
)
def test_an_impossible_pairing_exits_2_naming_what_fits_and_writes_nothing(
    place: Place, work: Path, capsys: pytest.CaptureFixture[str], value: Any, args: list[str], fits: str
) -> None:
    uri = push(place, value)
    code, _out, err = get(capsys, place, uri, *args)
    assert code == 2
    assert len(said(err)) == 1, err
    assert fits in err
    assert files(work) == []


def test_a_table_csv_cannot_hold_leaves_no_file_and_keeps_the_old_one(
    place: Place, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(place, pa.table({"nested": [[1, 2], [3]]}))
    (work / "t.csv").write_text("before")
    code, _, err = get(capsys, place, uri, "-o", "t.csv")
    assert code == 2
    assert "nested" in err
    assert "jsonl" in err
    assert files(work) == ["t.csv"]
    assert (work / "t.csv").read_text() == "before"


def test_a_damaged_object_writes_nothing(
    place: Place, work: Path, raw: RawObjects, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(place, frame(1000))
    raw.write(uri, flip_payload_byte(raw.read(uri)))
    code, _, err = get(capsys, place, uri, "-o", "frame.csv")
    assert code == 2, err
    assert files(work) == []


def test_an_unwritable_output_is_one_line(
    place: Place, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = push(place, frame(10))
    code, _, err = get(capsys, place, uri, "-o", os.path.join("missing", "frame.csv"))
    assert code == 2
    assert said(err) == [
        f"xcomstore: cannot write {os.path.join('missing', 'frame.csv')}: No such file or directory"
    ]


# -- memory ------------------------------------------------------------------------------------
PEAK = """
import json, resource, sys
import pyarrow as pa
from xcomstore import cli
code = cli.main(sys.argv[1:])
peak = {"code": code, "arrow": pa.default_memory_pool().max_memory()}
peak["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(peak), file=sys.stderr)
"""


def peak_of(*args: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, check=False)
    result: dict[str, int] = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return result


@pytest.mark.parametrize("ext", [".parquet", ".csv", ".arrow"])
def test_a_big_table_is_written_a_batch_at_a_time(file_url: str, work: Path, ext: str) -> None:
    """Arrow's memory peaks at about a batch (CSV, Arrow file) or a row group (Parquet), not at
    the 192 MB table the old `get` decoded whole."""
    rows = 8_000_000
    value = pa.table({"id": np.arange(rows), "x": np.random.default_rng(3).random(rows), "y": np.ones(rows)})
    uri = make_store([file_url]).push(value, origin(key="big"))["uri"]
    peak = peak_of("--path", file_url, "get", uri, "-o", f"big{ext}")
    assert peak["arrow"] < min(value.nbytes // 2, 80 << 20), peak
    assert (work / f"big{ext}").stat().st_size > value.nbytes // 3
