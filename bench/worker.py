"""One case in its own fresh process: `python -m bench.worker CASE_DIR`.

The parent prepares CASE_DIR/case.json and the environment (AIRFLOW_HOME, backend settings).
Airflow cases run the benchmark DAG with dag.test(); the yardstick runs without Airflow.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.cases import YARDSTICK, Case
from bench.taskside import CASE_DIR_ENV, STORE_URL_ENV


def _load_dag(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the benchmark DAG from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk.definitions.dag import DAG

    return next(v for v in vars(module).values() if isinstance(v, DAG))


def run_dag(filename: str = "xcom_bench_dag.py") -> None:
    """dag.test() of the DAG in `filename` of the DAGs folder (bench/reads.py runs its own)."""
    dag = _load_dag(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / filename)
    dag.test()


def main(argv: list[str]) -> int:
    directory = Path(argv[0])
    os.environ[CASE_DIR_ENV] = str(directory)
    case = Case.load(directory / "case.json")
    started = time.perf_counter()
    if case.backend == YARDSTICK:
        from bench import yardstick

        yardstick.run(case, os.environ[STORE_URL_ENV], directory)
    else:
        run_dag()
    (directory / "worker_seconds").write_text(f"{time.perf_counter() - started:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
