"""Decoding is bounded (security issue, point 2): a small hostile object never decodes to more
than the reference's `size` (plus a little slack) nor, without a reference, to more than
[xcomstore] max_size. A bomb ends in an ObjectFormatError naming the limit, with the reader's
peak RSS grown by far less than what the bomb would decode to. Each read runs in a child
process (tests/faults/hostile.py), so a bomb that goes off cannot take the test run down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.faults import hostile
from tests.faults.hostile import MiB

BOMB = 256 * MiB  # what each bomb decodes to: far past the limits below
GROWTH = 64 * MiB  # the most a refused bomb may grow the reader's peak RSS by
MAX_SIZE = "1MiB"
REFERENCE_SIZE = 1000

BOMBS: dict[str, Callable[[], bytes]] = {
    "zstd-bytes": lambda: hostile.sealed("bytes", "zstd", hostile.compressed_zeros("zstd", BOMB)),
    "lz4-bytes": lambda: hostile.sealed("bytes", "lz4", hostile.compressed_zeros("lz4", BOMB)),
    "gzip-bytes": lambda: hostile.sealed("bytes", "gzip", hostile.compressed_zeros("gzip", BOMB)),
    "zstd-json": lambda: hostile.json_bomb("zstd", 4 << 20),
    "zstd-npy": lambda: hostile.npy_bomb("zstd", BOMB),
    "arrow-zstd-pandas": lambda: hostile.arrow_bomb("zstd", BOMB // 8, "pandas.DataFrame"),
    "arrow-lz4-polars": lambda: hostile.arrow_bomb("lz4_frame", BOMB // 8, "polars.DataFrame"),
    "arrow-zstd-pyarrow": lambda: hostile.arrow_bomb("zstd", BOMB // 8, "pyarrow.Table"),
}
_built: dict[str, bytes] = {}


def bomb(name: str) -> bytes:
    if name not in _built:
        _built[name] = BOMBS[name]()
    return _built[name]


def assert_refused(report: dict[str, Any], limit: str) -> None:
    assert report.get("outcome") == "error", report
    assert report["error"] == "ObjectFormatError", report
    assert limit in report["message"], report
    assert report["rss_growth"] < GROWTH, f"peak RSS grew by {report['rss_growth'] / MiB:.0f} MiB"


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_read_without_reference_stops_at_max_size(name: str, tmp_path: Path) -> None:
    data = bomb(name)
    assert len(data) * 200 < BOMB  # small stored, huge decoded (lz4 compresses 255:1 at most)
    report = hostile.run_read(tmp_path, data, max_size=MAX_SIZE)
    assert_refused(report, "max_size")
    print(name, f"{len(data)} B stored, peak RSS +{report['rss_growth'] / MiB:.1f} MiB")


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_read_through_a_reference_stops_at_its_size(name: str, tmp_path: Path) -> None:
    """No max_size set: the reference's size alone bounds the read."""
    report = hostile.run_read(tmp_path, bomb(name), reference_size=REFERENCE_SIZE)
    assert_refused(report, "the reference's size")
    print(name, f"peak RSS +{report['rss_growth'] / MiB:.1f} MiB")


def test_npy_header_claiming_more_than_the_budget_is_refused_before_allocating(tmp_path: Path) -> None:
    """8 TiB claimed, no data: refused from the header, not by a failed allocation."""
    data = hostile.npy_header_only((1 << 40,))
    report = hostile.run_read(tmp_path, data, max_size=MAX_SIZE)
    assert_refused(report, "max_size")


def test_an_arrow_row_count_claimed_in_the_header_is_bounded(tmp_path: Path) -> None:
    """A header declaring 2**40 rows would size every numeric column up front."""
    import pyarrow as pa

    ipc = hostile.arrow_ipc(pa.table({"a": pa.array([1, 2, 3])}))
    meta = {"flavour": "pandas.DataFrame", "rows": 1 << 40, "columns": 1}
    report = hostile.run_read(tmp_path, hostile.sealed("arrow", "none", ipc, meta), max_size=MAX_SIZE)
    assert_refused(report, "max_size")


@pytest.mark.parametrize("flavour", ["pandas.DataFrame", "polars.DataFrame"])
@pytest.mark.parametrize("rows_in_header", [True, False])
def test_rows_without_bytes_are_bounded(flavour: str, rows_in_header: bool, tmp_path: Path) -> None:
    """2**28 null rows take a few hundred bytes of Arrow; pandas makes 2 GiB of them."""
    import pyarrow as pa

    rows = 1 << 28
    ipc = hostile.arrow_ipc(pa.table({"n": pa.nulls(rows)}))
    meta: dict[str, Any] = {"flavour": flavour, "columns": 1, **({"rows": rows} if rows_in_header else {})}
    report = hostile.run_read(tmp_path, hostile.sealed("arrow", "none", ipc, meta), max_size=MAX_SIZE)
    assert_refused(report, "max_size")


# -- legitimate values near the limit still read --------------------------------------------
def _legit_values() -> dict[str, Any]:
    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    rows = 100_000  # 800 KB of int64: under the 1 MiB limit
    return {
        "bytes": bytes(range(256)) * 3500,
        "json": [{"k": i, "s": "x" * 20} for i in range(25_000)],
        "numpy": np.arange(rows, dtype=np.float64),
        "pandas": pd.DataFrame({"a": np.arange(rows // 3), "s": [f"{i}" for i in range(rows // 3)]}),
        "polars": pl.DataFrame({"a": np.arange(rows)}),
        "pyarrow": pa.table({"a": np.arange(rows // 2), "b": pa.array([None, 1.5] * (rows // 4))}),
        "categorical": pd.DataFrame({"c": pd.Categorical(["a", "b"] * (rows // 2))}),
    }


@pytest.mark.parametrize("compression", ["zstd", "lz4", "gzip", "none"])
def test_values_under_max_size_read_back(compression: str, tmp_path: Path) -> None:
    from tests.lifecycle.stores import make_store, same

    store = make_store([f"file://{tmp_path}/store"], max_size=MAX_SIZE, compression=compression)
    for name, value in _legit_values().items():
        stored = store.push(value, hostile.ORIGIN)
        assert same(store.pull(stored), value), name
        assert same(store.read(stored["uri"]), value), name
