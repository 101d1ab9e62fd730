"""The fuzzer's worker process: decodes the cases it is sent and reports what each did.

Run by runner.Worker as `python -m tests.fuzz.worker`, under a memory limit (RLIMIT_AS, from
XCOMSTORE_FUZZ_MEMORY, set before anything is imported). It reads cases from stdin — a JSON line
{"id", "relpath", "size", "reference", "targets"} followed by `size` bytes of object — writes
the object into its own local store at `relpath`, and runs each target on it:

    read      XComStore.read(uri)
    pull      XComStore.pull(reference), the reference carrying the mutant's checksum
    preview   ops.preview.preview(store, uri), and its JSON form
    download  ops.export.download(store, uri, fmt), consumed, for every format offered

Before each target it prints {"id", "start": target} (so that a crash names the target), after it
{"id", "target", "outcome", "detail", "peak", "output"}: outcome "ok" (a value), "refused" (an
XComStoreError), "memory" (MemoryError) or "error" (any other exception); peak is the resident
memory the target added at its highest (Linux: VmHWM, reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import os
import resource
import sys

_LIMIT = int(os.environ.get("XCOMSTORE_FUZZ_MEMORY", str(2 << 30)))
resource.setrlimit(resource.RLIMIT_AS, (_LIMIT, _LIMIT))

import faulthandler  # noqa: E402  (after the limit, so that every import is under it)
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, BinaryIO  # noqa: E402

import numpy  # noqa: E402, F401  (the libraries the codecs load, imported up front: they are not
import pandas  # noqa: E402, F401  part of any case's memory)
import polars  # noqa: E402, F401
import pyarrow  # noqa: E402
import pyarrow.csv  # noqa: E402
import pyarrow.parquet  # noqa: E402, F401

from xcomstore.core.settings import Settings  # noqa: E402
from xcomstore.core.store import XComStore  # noqa: E402
from xcomstore.errors import XComStoreError  # noqa: E402
from xcomstore.ops.export import download, formats_for  # noqa: E402
from xcomstore.ops.preview import preview  # noqa: E402

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

    def show() -> int:
        return len(json.dumps(preview(store, uri).to_json(), default=str))

    def fetch() -> int:
        total = 0
        for fmt in formats_for(store.head(uri)):
            for chunk in download(store, uri, fmt).chunks:
                total += len(chunk)
        return total

    return {"read": read, "pull": pull, "preview": show, "download": fetch}


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


def main() -> None:
    faulthandler.enable(sys.stderr)  # a crash leaves its Python stack in the worker's log
    root = Path(tempfile.mkdtemp(prefix="xcomstore-fuzz-worker-"))
    store = XComStore.from_settings(Settings.from_mapping({"path": f"file://{root}", "threshold": "0"}))
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
        _send({"id": case["id"], "done": True})


if __name__ == "__main__":
    main()
