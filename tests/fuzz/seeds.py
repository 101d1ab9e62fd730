"""Valid objects of every codec and compression: what the fuzzer mutates.

Each seed is pushed through a real XComStore into a local folder, so its bytes are exactly what
a push writes (header, codec meta, native Arrow compression); the fuzzer keeps the object's
path, because a read refuses an object whose header names another XCom than its path.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.identity import Origin

COMPRESSIONS = ("zstd", "lz4", "gzip", "none")


@dataclass(frozen=True)
class Seed:
    name: str  # "<value>-<compression>"
    relpath: str  # the object's path in a store: the worker writes the mutant there
    data: bytes  # the whole object
    reference: dict[str, Any]  # what push returned (the pull target)
    legit_bytes: int  # memory the original value takes once decoded

    @property
    def codec(self) -> str:
        return str(self.reference["codec"])


def values() -> dict[str, tuple[Any, int]]:
    """Every kind of value a codec takes, with the bytes it takes in memory."""
    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    n = 300
    ints = list(range(n))
    strings = [None if i % 7 == 0 else "x" * (i % 13) + str(i) for i in range(n)]
    lists = [None if i % 5 == 0 else list(range(i % 4)) for i in range(n)]
    floats = [None if i % 11 == 0 else i / 3 for i in range(n)]
    table = pa.table(
        {
            "i": pa.array(ints, pa.int64()),
            "f": pa.array(floats, pa.float64()),
            "s": pa.array(strings, pa.string()),
            "l": pa.array(lists, pa.list_(pa.int32())),
            "ls": pa.array(strings, pa.large_string()),
            "d": pa.array(strings, pa.string()).dictionary_encode(),
        }
    )
    # Flat tables too: CSV cannot hold list columns, so only these reach the CSV writer.
    flat = table.drop_columns(["l"]).append_column("b", pa.array([i % 3 == 0 for i in ints]))
    frame = pd.DataFrame({"i": ints, "f": floats, "s": strings, "l": lists})
    polars_frame = pl.DataFrame({"i": ints, "f": floats, "s": strings, "l": lists})
    found: dict[str, tuple[Any, int]] = {
        "pyarrow": (table, table.nbytes),
        "pyarrow-flat": (flat, flat.nbytes),
        "pandas": (frame, int(frame.memory_usage(deep=True).sum())),
        "pandas-flat": (frame.drop(columns=["l"]), int(frame.memory_usage(deep=True).sum())),
        "polars": (polars_frame, int(polars_frame.estimated_size())),
        "pandas-series": (pd.Series(strings, name="s"), 64 * n),
        "polars-series": (pl.Series("f", floats), 8 * n),
    }
    arrays = {
        "f8-2d": np.arange(600.0).reshape(20, 30),
        "i4-1d": np.arange(1000, dtype=np.int32),
        "u1-3d-fortran": np.asfortranarray(np.arange(240, dtype=np.uint8).reshape(4, 6, 10)),
        "bool": np.arange(100) % 3 == 0,
        "c16": np.arange(50) * (1 + 2j),
        "U8": np.array(["alpha", "beta", "γάμμα"] * 30),
        "M8": np.arange(40).astype("datetime64[s]"),
        "structured": np.zeros(30, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S5")]),
        "scalar": np.array(3.5),
    }
    for name, array in arrays.items():
        found[f"numpy-{name}"] = (array, array.nbytes)
    found["bytes"] = (bytes(range(256)) * 20, 5120)
    found["bytearray"] = (bytearray(b"abc" * 500), 1500)
    document = {"rows": [{"id": i, "name": f"n{i}", "tags": ["a", None, 1.5]} for i in range(80)]}
    found["json"] = (document, 80 * 300)
    return found


def build(folder: Path | None = None) -> list[Seed]:
    """Every value of values() under every compression, as sealed objects."""
    root = Path(folder or tempfile.mkdtemp(prefix="xcomstore-fuzz-seeds-"))
    seeds = []
    for compression in COMPRESSIONS:
        settings = Settings.from_mapping(
            {"path": f"file://{root / compression}", "threshold": "0", "compression": compression}
        )
        store = XComStore.from_settings(settings)
        for name, (value, legit) in values().items():
            origin = Origin(dag_id="fuzz", run_id="run", task_id="t", map_index=-1, key=name)
            reference = store.push(value, origin)
            relpath = store.location.relative(reference["uri"])
            data = (root / compression / relpath).read_bytes()
            seeds.append(Seed(f"{name}-{compression}", relpath, data, reference, legit))
    return seeds
