"""The fuzzer's worker process: decodes the cases it is sent and reports what each did.

Run by runner.Worker as `python -m tests.fuzz.worker`, under a memory limit: RLIMIT_AS set,
once the libraries are loaded and their thread pools started (that alone is ~1.4 GiB of address
space, most of it reserved, not used), to what the process then has plus XCOMSTORE_FUZZ_MEMORY
(2 GiB). It reads cases from stdin — a JSON line
{"id", "relpath", "size", "reference", "targets"} followed by `size` bytes of object — writes
the object into its own local store at `relpath`, and runs each target on it:

    read      XComStore.read(uri)
    pull      XComStore.pull(reference), the reference carrying the mutant's checksum
    project   XComStore.pull(reference, columns=["i"]): a table stored as blocks read in part
    preview   ops.preview.preview(store, uri), and its JSON form
    download  ops.export.download(store, uri, fmt), consumed, for every format offered

Before each target it prints {"id", "start": target} (so that a crash names the target), after it
{"id", "target", "outcome", "detail", "peak", "output"}: outcome "ok" (a value), "refused" (an
XComStoreError), "memory" (MemoryError) or "error" (any other exception); peak is the resident
memory the target added at its highest (Linux: VmHWM, reset through /proc/self/clear_refs).
After the case, {"id", "done", "grown"}: how much address space the process has kept since it
started, so that the runner can replace a worker a big case left bloated.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

# The libraries the codecs load, imported up front: they are not part of any case's memory.
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from xcomstore.core.settings import Settings
from xcomstore.core.store import XComStore
from xcomstore.errors import XComStoreError
from xcomstore.ops.export import download, formats_for
from xcomstore.ops.preview import preview

DETAIL = 300  # characters of an exception's message reported


def _status(name: str) -> int:
    """A line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> int:
    """Reset the peak resident size to the current one, and return that. (No gc.collect():
    it takes 45 ms with pandas and polars loaded, and what it frees only lowers the baseline.)"""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return _status("VmRSS")


def _targets(store: XComStore, uri: str, reference: dict[str, Any]) -> dict[str, Any]:
    def read() -> int:
        store.read(uri)
        return 0

    def pull() -> int:
        store.pull(reference)
        return 0

    def project() -> int:
        store.pull(reference, columns=["i"])
        return 0

    def show() -> int:
        return len(json.dumps(preview(store, uri).to_json(), default=str))

    def fetch() -> int:
        total = 0
        for fmt in formats_for(store.head(uri)):
            for chunk in download(store, uri, fmt).chunks:
                total += len(chunk)
        return total

    return {"read": read, "pull": pull, "project": project, "preview": show, "download": fetch}


def _run(target: Any) -> tuple[str, str, int]:
    """(outcome, detail, output size) of one target."""
    try:
        return "ok", "", int(target())
    except XComStoreError as exc:
        return "refused", f"{type(exc).__name__}: {str(exc)[-DETAIL:]}", 0
    except MemoryError as exc:
        return "memory", f"MemoryError: {str(exc)[:DETAIL]}", 0
    except Exception as exc:
        return "error", f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:DETAIL]}", 0


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _read_case(stdin: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    line = stdin.readline()
    if not line:
        return None
    case = json.loads(line)
    data = stdin.read(case["size"])
    return case, data


def _limit_memory() -> int:
    """Start the thread pools (pyarrow's, polars', zstd's), then cap the address space at what
    the process has plus XCOMSTORE_FUZZ_MEMORY; the address space it has now."""
    table = pa.table({"a": np.arange(100_000), "s": ["x"] * 100_000})
    pl.from_arrow(table).sum()
    table.to_pandas()
    pd.DataFrame({"a": [1]}).to_numpy()
    base = _status("VmSize")
    limit = base + int(os.environ.get("XCOMSTORE_FUZZ_MEMORY", str(2 << 30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return base


def main() -> None:
    faulthandler.enable(sys.stderr)  # a crash leaves its Python stack in the worker's log
    base = _limit_memory()
    root = Path(tempfile.mkdtemp(prefix="xcomstore-fuzz-worker-"))
    # max_size bounds a read by URI alone (no reference to size the value by), as a deployment
    # sets it; XCOMSTORE_FUZZ_MAX_SIZE="" reads without it.
    settings = {
        "path": f"file://{root}",
        "threshold": "0",
        "max_size": os.environ.get("XCOMSTORE_FUZZ_MAX_SIZE", "32MiB"),
    }
    store = XComStore.from_settings(Settings.from_mapping(settings))
    _send({"ready": os.getpid()})
    while (got := _read_case(sys.stdin.buffer)) is not None:
        case, data = got
        path = root / case["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        uri = store.location.uri(case["relpath"])
        # The reference as the metadata DB would hold it for this store's copy of the object.
        targets = _targets(store, uri, {**case["reference"], "uri": uri})
        for name in case["targets"]:
            _send({"id": case["id"], "start": name})
            before = _reset_peak()
            outcome, detail, output = _run(targets[name])
            peak = max(0, _status("VmHWM") - before)
            _send(
                {
                    "id": case["id"],
                    "target": name,
                    "outcome": outcome,
                    "detail": detail,
                    "peak": peak,
                    "output": output,
                }
            )
        _send({"id": case["id"], "done": True, "grown": _status("VmSize") - base})


if __name__ == "__main__":
    main()
