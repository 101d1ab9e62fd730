"""Building the benchmark values, and a cheap fingerprint to check that a pulled value is intact."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from bench.cases import ValueSpec

_COLUMNS = 10
_SEED = 20261124


def make(spec: ValueSpec) -> Any:
    """A deterministic value of the given kind and size (float64 noise: it barely compresses)."""
    if spec.kind == "int":
        return 42
    if spec.kind == "json":
        return _json_records(spec.rows)
    array = np.random.default_rng(_SEED).standard_normal((spec.rows, _COLUMNS))
    if spec.kind == "numpy":
        return array
    columns = {f"c{i}": array[:, i].copy() for i in range(_COLUMNS)}
    del array
    if spec.kind == "pandas":
        import pandas as pd

        return pd.DataFrame(columns)
    import polars as pl

    return pl.DataFrame(columns)


def _json_records(target_bytes: int) -> list[dict[str, Any]]:
    """Records of mixed types (ints, floats, strings, nested lists) totalling about target_bytes."""
    rng = np.random.default_rng(_SEED)
    record_bytes = 140  # measured size of one record below, as JSON
    count = max(1, target_bytes // record_bytes)
    values = rng.standard_normal(count).round(6).tolist()
    return [
        {"id": i, "name": f"item-{i:08d}", "score": values[i], "ok": i % 3 == 0,
         "tags": ["alpha", "beta", str(i % 97)], "parent": {"id": i // 10, "level": i % 5}}
        for i in range(count)
    ]  # fmt: skip


def fingerprint(value: Any) -> dict[str, Any]:
    """Type, shape, size in memory and a checksum of a few columns: enough to catch a broken value."""
    if isinstance(value, np.ndarray):
        return _fingerprint_array(value)
    module = type(value).__module__.partition(".")[0]
    if module in ("pandas", "polars"):
        return _fingerprint_frame(value, module)
    text = json.dumps(value, sort_keys=True).encode()
    return {"type": type(value).__name__, "nbytes": len(text), "sha256": _digest(text)}


def _fingerprint_array(array: np.ndarray) -> dict[str, Any]:
    sample = np.ascontiguousarray(array[::101])
    return {
        "type": "ndarray",
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "nbytes": int(array.nbytes),
        "sha256": _digest(sample.tobytes()),
    }


def _fingerprint_frame(frame: Any, module: str) -> dict[str, Any]:
    names = list(frame.columns)
    picked = [names[0], names[len(names) // 2], names[-1]]
    digest = hashlib.sha256()
    for name in picked:
        digest.update(np.ascontiguousarray(frame[name].to_numpy()).tobytes())
    in_memory = frame.memory_usage(index=False).sum() if module == "pandas" else frame.estimated_size()
    return {
        "type": f"{module}.DataFrame",
        "shape": list(frame.shape),
        "columns": [str(n) for n in names],
        "nbytes": int(in_memory),
        "sha256": digest.hexdigest(),
    }


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
