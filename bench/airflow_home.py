"""AIRFLOW_HOME per case: one template migrated once, copied for every case; and the case's env."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.cases import Case

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DAG_TEMPLATE = BENCH_DIR / "xcom_bench_dag.py"
COMMON_IO_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
XCOMSTORE_BACKEND = "xcomstore.XComStoreBackend"
COMMON_IO_THRESHOLD = "1024"
XCOMSTORE_THRESHOLD = "65536"


def base_env(home: Path) -> dict[str, str]:
    """Environment for an Airflow process whose home (DB, DAGs folder) is `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BENCH_"))}
    python_path = [str(REPO_ROOT), env.get("PYTHONPATH", "")]
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join(p for p in python_path if p),
    )
    return env


def make_template(home: Path) -> Path:
    """Migrate a fresh SQLite metadata DB once (about 4 s) into `home`."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    shutil.copy(DAG_TEMPLATE, home / "dags" / DAG_TEMPLATE.name)
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run(
        [str(airflow), "db", "migrate"],
        env=base_env(home),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return home


def copy_home(template: Path, home: Path) -> Path:
    shutil.copytree(template, home)
    return home


def backend_env(case: Case, store_url: str) -> dict[str, str]:
    """The [core] xcom_backend and the backend's own settings for this case."""
    if case.backend == "common-io":
        return {
            "AIRFLOW__CORE__XCOM_BACKEND": COMMON_IO_BACKEND,
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": store_url,
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": COMMON_IO_THRESHOLD,
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION": (
                "" if case.compression == "none" else case.compression
            ),
        }
    if case.backend == "xcomstore":
        return {
            "AIRFLOW__CORE__XCOM_BACKEND": XCOMSTORE_BACKEND,
            "AIRFLOW__XCOMSTORE__PATH": store_url,
            "AIRFLOW__XCOMSTORE__THRESHOLD": XCOMSTORE_THRESHOLD,
            "AIRFLOW__XCOMSTORE__COMPRESSION": case.compression,
        }
    return {}
