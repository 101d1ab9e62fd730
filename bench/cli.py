"""`python -m bench`: run the cases, print the table, write the JSON and the PNG chart."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import chart, report
from bench.airflow_home import make_template
from bench.cases import AIRFLOW_BACKENDS, Case, Store, all_cases, select
from bench.runner import Context, Outcome, kill_running_cases, run_all
from bench.s3server import MotoServer

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
_PACKAGES = (
    "apache-airflow", "apache-airflow-providers-common-io", "apache-airflow-providers-amazon",
    "xcomstore", "pandas", "polars", "pyarrow", "numpy", "fsspec", "s3fs", "moto",
)  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small values (about 2 minutes)")
    parser.add_argument(
        "--cases",
        action="append",
        default=[],
        metavar="PATTERNS",
        help="comma-separated fnmatch patterns on backend/value/compression, e.g. "
        "'default,common-io' or 'xcomstore/pandas-*/zstd' (repeatable; any match selects)",
    )
    parser.add_argument("--s3", action="store_true", help="store on a local moto S3 server")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where JSON and PNG go")
    parser.add_argument(
        "--jobs", type=int, default=None, help="cases run at once (default 2 with --quick, else 1; "
        "values of 100 MB or more always run alone)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs of each case under 100 MB, the median one "
        "reported (default 3, 1 with --quick)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    parser.add_argument("--mem-limit-gb", type=float, default=16, help="kill a case above this RSS")
    parser.add_argument(
        "--quiet-wait", type=float, default=60, help="seconds to wait, at most, for other work on "
        "the machine to calm down before each case run alone (0: never wait)",
    )  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch space (default /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep each case's home and store")
    parser.add_argument("--list", action="store_true", help="only list the selected cases")
    return parser.parse_args(argv)


def _patterns(raw: list[str]) -> list[str]:
    return [p.strip() for chunk in raw for p in chunk.split(",") if p.strip()]


def _versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _progress(total: int, partial: Path) -> Any:
    """Print one line per finished case, and append it to a JSON-lines file in case the run dies."""
    done = [0]

    def show(outcome: Outcome) -> None:
        done[0] += 1
        with partial.open("a") as sink:
            sink.write(json.dumps(outcome.to_dict(), default=str) + "\n")
        push, pull = report.seconds(outcome, "push"), report.seconds(outcome, "pull")
        timing = f"push {push:.3f}s pull {pull:.3f}s" if push is not None and pull is not None else ""
        detail = timing if outcome.status == "ok" else f"{outcome.status}: {outcome.error}"
        line = f"[{done[0]:>2}/{total}] {outcome.case.case_id:<34} {outcome.wall_seconds:6.1f}s  {detail}"
        print(line[:200], flush=True)

    return show


def _stop_on_signal(signum: int, _frame: Any) -> None:
    kill_running_cases()
    raise SystemExit(128 + signum)


def _run(
    cases: list[Case], args: argparse.Namespace, work: Path, log_dir: Path, partial: Path
) -> list[Outcome]:
    with ExitStack() as stack:
        template = None
        if any(c.backend in AIRFLOW_BACKENDS for c in cases):
            template = make_template(work / "template")
        s3 = None
        if args.s3:
            s3 = MotoServer(log_dir / "moto_server.log")
            stack.callback(s3.stop)
        ctx = Context(
            work_dir=work, log_dir=log_dir, template=template, s3=s3, timeout=args.timeout,
            mem_limit=int(args.mem_limit_gb * 2**30), keep=args.keep, quiet_wait=args.quiet_wait,
        )  # fmt: skip
        jobs = args.jobs or (2 if args.quick else 1)
        return run_all(cases, ctx, jobs, _progress(len(cases), partial), _repeat(args))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    store: Store = "s3" if args.s3 else "file"
    cases = select(all_cases(args.quick, store), _patterns(args.cases))
    if not cases:
        print("no case matches --cases", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(c.case_id for c in cases))
        return 0
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"bench-{store}-{'quick' if args.quick else 'full'}-{stamp}"
    log_dir = args.out / "logs" / name
    log_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="xcomstore-bench-", dir=args.work_dir))
    print(f"{len(cases)} cases, store={store}; logs in {log_dir}", flush=True)
    partial = args.out / f"{name}.partial.jsonl"
    signal.signal(signal.SIGTERM, _stop_on_signal)
    started = time.perf_counter()
    try:
        outcomes = _run(cases, args, work, log_dir, partial)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    print(f"\n{report.table(outcomes)}\n\n{report.legend(_repeat(args))}\n")
    meta = {
        "name": name, "store": store, "quick": args.quick, "argv": sys.argv,
        "total_seconds": round(total, 1), "python": sys.version.split()[0],
        "machine": platform.platform(), "cpus": _cpus(), "versions": _versions(),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(args.out / f"{name}.json", outcomes, meta)
    chart.draw(args.out / f"{name}.png", outcomes, f"{name}  ({store} store)")
    partial.unlink(missing_ok=True)
    print(f"total {total:.0f} s; wrote {args.out / name}.json and .png")
    return 0


def _repeat(args: argparse.Namespace) -> int:
    return int(args.repeat or (1 if args.quick else 3))


def _cpus() -> int:
    import os

    return os.cpu_count() or 0
