"""NumPy arrays through XComStore against the raw bytes on disk, interleaved in one process.

    .venv/bin/python -m bench.arrays                       # 80 MB and 800 MB, C and F order, none and zstd
    .venv/bin/python -m bench.arrays --sizes 80 --repeat 5

No Airflow: XComStore's own push and pull (store write and read, checksum, compression) on a
file:// store, beside the yardstick of the same bytes: a raw write with fsync, and a raw read
into a preallocated array. Each (size, order, compression) runs in a fresh process that does
yardstick, push and pull in turn `--repeat` times, so a busy machine slows both alike; the
table shows medians, and push/raw, pull/raw and the sum's ratio. Peak RSS growth is bench.measure's
(high-water mark and sampler), shown as a multiple of the array's size. The Airflow bench
(`python -m bench --cases 'numpy-*'`) runs the same arrays through common-io and the default backend.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_COLUMNS = 10
_FIELDS = ("raw_write", "push", "raw_read", "pull")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.arrays", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="80,800", help="array sizes in MB, comma-separated")
    parser.add_argument("--orders", default="C,F", help="memory orders: C, F")
    parser.add_argument("--compressions", default="none,zstd")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (median shown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_run_case(json.loads(args.child), args.repeat)))
        return
    print(_HEADER)
    for size in (int(s) for s in args.sizes.split(",")):
        for order in args.orders.split(","):
            for compression in args.compressions.split(","):
                case = {"mb": size, "order": order, "compression": compression}
                command = [sys.executable, "-m", "bench.arrays", "--repeat", str(args.repeat)]
                done = subprocess.run([*command, "--child", json.dumps(case)], capture_output=True, text=True)
                if done.returncode:
                    print(f"{size} MB {order} {compression}: failed\n{done.stderr[-2000:]}")
                    continue
                print(_row(case, json.loads(done.stdout.splitlines()[-1])), flush=True)


_HEADER = (
    f"{'case':18} {'raw w+fsync':>11} {'push':>7} {'push/raw':>8} {'raw read':>8} {'pull':>7} "
    f"{'pull/raw':>8} {'sum/raw':>7} {'+RSS push':>9} {'+RSS pull':>9}   CPU s push/raw pull/raw\n"
    + "-"
    * 128
)


def _row(case: dict[str, Any], got: dict[str, Any]) -> str:
    t = {name: statistics.median(got[name]) for name in _FIELDS}
    cpu = {name: statistics.median(got[f"{name}_cpu"]) for name in _FIELDS}
    rss = {name: max(got[f"{name}_rss"]) / got["nbytes"] for name in ("push", "pull")}
    label = f"{case['mb']} MB {case['order']} {case['compression']}"
    return (
        f"{label:18} {t['raw_write']:11.3f} {t['push']:7.3f} {t['push'] / t['raw_write']:7.2f}x "
        f"{t['raw_read']:8.3f} {t['pull']:7.3f} {t['pull'] / t['raw_read']:7.2f}x "
        f"{(t['push'] + t['pull']) / (t['raw_write'] + t['raw_read']):6.2f}x "
        f"{rss['push']:8.2f}x {rss['pull']:8.2f}x   "
        f"{cpu['push']:.3f}/{cpu['raw_write']:.3f} {cpu['pull']:.3f}/{cpu['raw_read']:.3f}"
    )


def _run_case(case: dict[str, Any], repeat: int) -> dict[str, Any]:
    import numpy as np

    from bench.measure import measured
    from xcomstore.core.settings import Settings
    from xcomstore.core.store import XComStore
    from xcomstore.identity import Origin
    from xcomstore.storage.location import fsspec_filesystem

    rows = case["mb"] * 10**6 // (8 * _COLUMNS)
    value = np.random.default_rng(20261124).standard_normal((rows, _COLUMNS))
    if case["order"] == "F":
        value = np.asfortranarray(value)
    results: dict[str, Any] = {"nbytes": value.nbytes}
    with tempfile.TemporaryDirectory(prefix="bench-arrays-") as folder:
        options = {"path": f"file://{folder}/store", "threshold": "0", "compression": case["compression"]}
        store = XComStore.from_settings(Settings.from_mapping(options), opener=fsspec_filesystem)
        origin = Origin(dag_id="bench", run_id="r", task_id="t", map_index=-1, key="value")
        warm = Origin(dag_id="bench", run_id="r", task_id="warm", map_index=-1, key="value")
        store.pull(store.push(value[:2000].copy(order="A"), warm))  # imports, the store's folders
        raw = Path(folder) / "raw.bin"
        for _ in range(repeat):
            for name, operation in (
                ("raw_write", lambda: _write_synced(raw, value)),
                ("push", lambda: results.setdefault("ref", store.push(value, origin))),
                ("raw_read", lambda: _read_into(raw, value)),
                ("pull", lambda: store.pull(results["ref"])),
            ):
                cpu = time.process_time()
                with measured() as m:
                    kept = operation()
                results.setdefault(f"{name}_cpu", []).append(time.process_time() - cpu)
                results.setdefault(name, []).append(m.seconds)
                results.setdefault(f"{name}_rss", []).append(m.peak_growth)
                if name == "pull":
                    assert kept is not None
                    assert kept.shape == value.shape
                    assert kept.flags.f_contiguous == value.flags.f_contiguous
                del kept
            store.purge(results.pop("ref"))
            raw.unlink()
    return results


def _write_synced(path: Path, value: Any) -> None:
    """The array's bytes, written and fsynced: what a disk can do."""
    with open(path, "wb") as sink:
        sink.write(value.ravel(order="A").view("u1").data)
        sink.flush()
        os.fsync(sink.fileno())


def _read_into(path: Path, like: Any) -> Any:
    """The bytes read back into a new array of the same shape, dtype and order."""
    import numpy as np

    array = np.empty(like.shape, like.dtype, order="F" if like.flags.f_contiguous else "C")
    with open(path, "rb") as source:
        source.readinto(array.ravel(order="A").view("u1").data)
    return array


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
