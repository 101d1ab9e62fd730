"""`python -m bench.reads`: partial, typed and fan-in reads through Airflow, side by side for the
default backend, common-io and xcomstore.

One real DAG per backend (bench/reads_dag.py, `dag.test()`, SQLite): a task pushes a frame of
20 float64 columns, a mapped task pushes `--values` strings of `--size-mb` each, and a last task
times, best of `--repeat`, the reads a consumer would write with that backend:

    full frame        ti.xcom_pull("frame")
    2 of 20 columns   xcomstore.pull("frame", columns=[...])  | the others: full pull, then [cols]
    as polars         xcomstore.pull("frame", to="polars")     | the others: polars.from_pandas(full)
    fan-in            ti.xcom_pull("shard"): every mapped value (xcomstore: [xcomstore]
                      max_concurrency at once, and again one at a time)

Each backend runs in its own process with its own Airflow home, on the local file store or
with `--s3` on a local moto server behind bench/s3_front.py, whose GETs read only what they ask
for, as S3's do (`--moto-gets`: moto's own, which copy the whole object every time;
`--latency-ms`: each request answered that late). The
default backend keeps everything in the DB (SQLite rejects an 800 MB frame). A backend that
cannot do a read shows its error. Run it alone on the machine: the figures are times.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.airflow_home import backend_env, base_env, copy_home, make_template
from bench.cases import AIRFLOW_BACKENDS, Case, ValueSpec
from bench.s3server import MotoServer, add_moto_gets
from bench.taskside import CASE_DIR_ENV

_MB = 1_000_000
_DAG = Path(__file__).resolve().parent / "reads_dag.py"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="frame rows x 20 float64 (default: 80 MB)")
    parser.add_argument("--values", type=int, default=1000, help="mapped values (default 1000)")
    parser.add_argument("--size-mb", type=float, default=1.0, help="each mapped value's size (default 1)")
    parser.add_argument("--repeat", type=int, default=2, help="reads of each kind, best counts")
    parser.add_argument("--backends", default=",".join(AIRFLOW_BACKENDS), help="comma-separated")
    parser.add_argument("--s3", action="store_true", help="store on a local moto S3 server")
    parser.add_argument("--latency-ms", type=float, default=0, help="with --s3: each request that late")
    add_moto_gets(parser)
    args = parser.parse_args()
    spec = {"rows": args.rows, "values": args.values, "value_bytes": int(args.size_mb * _MB)}
    print(_machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as scratch:
        work = Path(scratch)
        template = make_template(work / "template")
        shutil.copy(_DAG, template / "dags" / _DAG.name)
        server = (
            MotoServer(work / "moto.log", args.latency_ms, direct_gets=not args.moto_gets)
            if args.s3
            else None
        )
        try:
            results = {
                backend: _run(backend, {**spec, "repeat": args.repeat}, template, work, server)
                for backend in args.backends.split(",")
                if not (server and backend == "default")  # it has no store to put on S3
            }
        finally:
            if server:
                server.stop()
    print(_table(results))


def _run(backend: str, spec: dict[str, Any], template: Path, work: Path, server: MotoServer | None) -> Any:
    """One backend's DAG run in a process of its own: its reads' figures, or why it failed."""
    directory = work / backend
    home = copy_home(template, directory / "home")
    (home / "dags" / "xcom_bench_dag.py").unlink()  # only this DAG in its folder
    (directory / "case.json").write_text(json.dumps({"backend": backend, **spec}))
    env = base_env(home)
    store = f"file://{directory / 'store'}"
    if server is not None:
        env.update(server.env(directory))
        store = server.make_bucket(f"reads-{backend}")
    env.update(backend_env(Case(backend, ValueSpec("pandas", spec["rows"], "reads"), "none"), store))
    env[CASE_DIR_ENV] = str(directory)
    print(f"{backend}: running the DAG …", flush=True)
    started = time.perf_counter()
    log = directory / "dag.log"
    with log.open("wb") as sink:
        done = subprocess.run(
            [sys.executable, "-c", f"from bench.worker import run_dag; run_dag({_DAG.name!r})"],
            env=env,
            cwd=directory,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    print(f"{backend}: {time.perf_counter() - started:.0f} s", flush=True)
    found = directory / "reads.json"
    if found.exists():
        return json.loads(found.read_text())
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
    return f"fails: {tail[0][:200]}"


def _table(results: dict[str, Any]) -> str:
    reads = ["full frame", "2 of 20 columns", "as polars", "fan-in", "fan-in, one at a time"]
    lines = ["| read | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for read in reads:
        cells = [_cell(found, read) for found in results.values()]
        if any(cell != "" for cell in cells):
            lines.append(f"| {read} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(found: Any, read: str) -> str:
    if isinstance(found, str):
        return found
    figure = found.get(read)
    if figure is None:
        return ""
    if "error" in figure:
        return f"fails: {figure['error']}"
    return f"{figure['seconds']:.3f} s, +{figure['rss_growth'] / _MB:.0f} MB"


def _machine() -> str:
    from importlib import metadata

    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("apache-airflow", "apache-airflow-providers-common-io")
    )
    return f"{time.strftime('%Y-%m-%d')}, {platform.node()}: Python {platform.python_version()}, {versions}"


if __name__ == "__main__":
    main()
