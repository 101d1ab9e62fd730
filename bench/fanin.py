"""`python -m bench.fanin`: a task receiving 1,000 mapped values of 1 MB from S3, concurrently
([xcomstore] max_concurrency) and one after another (max_concurrency = 1).

What runs is the task side of `ti.xcom_pull(task_ids=<mapped task>)`: XComStoreBackend.get_all,
as in a task, with the SDK's slice request answered by a stand-in supervisor holding the rows
(the rows are small and come in one answer either way), so what is timed is the objects' reads:
the backend putting each one off, then core.fanin reading them through s3fs from a local moto
server (bench/s3server.py). The values are pushed first by the backend itself (not timed).
Each mode runs --repeat times; the best time counts. It prints the CPU time the server and the
task used: moto is Python, so its CPU per request (and the task's own: HTTP, checksum, decoding)
bounds what any number of concurrent reads can gain on the machine's cores. With --latency-ms
each request waits that long in the server first (bench/s3_front.py, no CPU), as against a remote
store, where waiting is what concurrency hides. On a busy machine the ratio is noisy.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.s3server import MotoServer, add_moto_gets

_MB = 1_000_000
WHERE = {"key": "return_value", "dag_id": "bench_fanin", "task_id": "shard", "run_id": "manual__bench"}


class SliceSupervisor:
    """Answers get_all's one request (GetXComSequenceSlice) with the mapped task's rows."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import GetXComSequenceSlice, XComSequenceSliceResult

        assert isinstance(msg, GetXComSequenceSlice), msg
        return XComSequenceSliceResult(root=self.rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanin", description=__doc__.split("\n")[0])
    parser.add_argument("--values", type=int, default=1000, help="mapped values (default 1000)")
    parser.add_argument("--size-mb", type=float, default=1.0, help="size of each value in MB (default 1)")
    parser.add_argument("--concurrency", type=int, default=0, help="max_concurrency (default: the option's)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode, best counts (default 2)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0,
        help="answer each S3 request that late, as a remote store does (default 0: local moto)",
    )
    add_moto_gets(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fanin-") as scratch:
        server = MotoServer(Path(scratch) / "moto.log", args.latency_ms, direct_gets=not args.moto_gets)
        gets = "moto's own GETs" if args.moto_gets else "GETs read from moto's copy (bench/s3_front.py)"
        print(f"S3 server: moto, {gets}, each request answered after {args.latency_ms:g} ms", flush=True)
        try:
            _configure(server, Path(scratch))
            run(server.pid, args.values, int(args.size_mb * _MB), args.concurrency, args.repeat)
        finally:
            server.stop()


def _configure(server: MotoServer, scratch: Path) -> None:
    """This process as a task's: Airflow's home, the S3 connection, the backend's settings."""
    os.environ.update(server.env(scratch))
    os.environ.update(
        AIRFLOW_HOME=str(scratch / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__XCOM_BACKEND="xcomstore.XComStoreBackend",
        AIRFLOW__XCOMSTORE__PATH=server.make_bucket("fanin"),
    )


def run(server_pid: int, count: int, size: int, concurrency: int, repeat: int) -> None:
    from airflow.sdk.execution_time import task_runner

    from xcomstore.airflow.backend import XComStoreBackend, current_store

    logging.getLogger("xcomstore").setLevel(logging.WARNING)  # not a line per value read
    concurrency = concurrency or current_store().settings.max_concurrency
    print(f"pushing {count} values of {size / _MB:g} MB to moto (not timed) …", flush=True)
    rows = _push(XComStoreBackend, count, size)
    task_runner.SUPERVISOR_COMMS = SliceSupervisor(rows)  # type: ignore[assignment]
    processes = (psutil.Process(server_pid), psutil.Process())
    timings = {}
    for mode in (concurrency, 1):
        os.environ["AIRFLOW__XCOMSTORE__MAX_CONCURRENCY"] = str(mode)
        best, cpu = min(_timed_pull(XComStoreBackend, count, size, processes) for _ in range(repeat))
        timings[mode] = best
        print(
            f"max_concurrency={mode:<3} {best:7.2f} s  {count * size / _MB / best:7.1f} MB/s   "
            f"CPU: server {cpu[0]:.2f} s, task {cpu[1]:.2f} s",
            flush=True,
        )
    print(f"concurrent / one after another: {timings[1] / timings[concurrency]:.1f}x faster")
    # moto is Python: its CPU per request, and the task's (HTTP, checksum, decoding), bound how
    # fast any number of concurrent reads can go on this machine's cores.
    print(f"(on {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end)")


def _push(backend: Any, count: int, size: int) -> list[Any]:
    def push(index: int) -> Any:
        value = index.to_bytes(4, "big") + os.urandom(size - 4)  # random: barely compresses
        return backend.serialize_value(value, **WHERE, map_index=index)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(push, range(count)))


def _timed_pull(
    backend: Any, count: int, size: int, processes: tuple[psutil.Process, ...]
) -> tuple[float, tuple[float, ...]]:
    """Seconds of one get_all, and the CPU seconds the server and this process used meanwhile."""
    cpu = [_cpu(p) for p in processes]
    started = time.perf_counter()
    values = backend.get_all(**WHERE)
    seconds = time.perf_counter() - started
    used = tuple(_cpu(p) - before for p, before in zip(processes, cpu, strict=True))
    assert [int.from_bytes(v[:4], "big") for v in values] == list(range(count)), "values out of order"
    assert all(len(v) == size for v in values)
    return seconds, used


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


if __name__ == "__main__":
    main()
