"""Run the demo DAG with xcomstore on a SQLite metadata DB and a local store, then show the result.

Everything lives under .tmp/demo (Airflow home, DB, store); each run starts fresh.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".tmp" / "demo"
STORE = HOME / "store"
BIN = Path(sys.executable).parent


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "examples" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
        AIRFLOW__CORE__XCOM_BACKEND="xcomstore.XComStoreBackend",
        AIRFLOW__XCOMSTORE__PATH=STORE.as_uri(),
        AIRFLOW__XCOMSTORE__THRESHOLD="64KiB",
        AIRFLOW__XCOMSTORE__COMPRESSION="zstd",
    )
    return env


def run(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        sys.exit(f"demo: {' '.join(args[:3])} failed, see {log}")


def main() -> None:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    env = environment()
    print(f"demo: Airflow home {HOME}\ndemo: store {env['AIRFLOW__XCOMSTORE__PATH']}")
    print("demo: migrating the SQLite metadata DB …")
    run([str(BIN / "airflow"), "db", "migrate"], env, HOME / "migrate.log")
    print("demo: running DAG xcomstore_demo with dag.test() …")
    run([str(BIN / "airflow"), "dags", "test", "xcomstore_demo"], env, HOME / "dag-test.log")
    show_metadata_db()
    print("\n== what the store holds (`xcomstore ls`, read from the store alone):")
    subprocess.run([str(BIN / "xcomstore"), "ls"], env=env, check=True)
    print(f"\ndemo: task logs in {HOME / 'dag-test.log'}; try `xcomstore show <uri>` with the env above.")


def show_metadata_db() -> None:
    print("\n== what the metadata DB holds (table xcom):")
    with sqlite3.connect(HOME / "airflow.db") as db:
        states = db.execute("select task_id, map_index, state from task_instance order by task_id").fetchall()
        rows = db.execute("select task_id, map_index, key, value from xcom order by task_id, map_index")
        for task_id, map_index, key, value in rows:
            # SQLite hands back numbers in a JSON column as numbers, everything else as text.
            data = json.loads(value) if isinstance(value, (str, bytes)) else value
            where = f"{task_id}[{map_index}]" if map_index >= 0 else task_id
            if isinstance(data, dict) and "__xcomstore__" in data:
                print(
                    f"  {where:10} {key}: offloaded {data['summary']}, {data['stored_bytes']} B → {data['uri']}"
                )
            else:
                print(f"  {where:10} {key}: inline {value}")
    failed = [s for s in states if s[2] != "success"]
    print(f"\n== task instances: {len(states)} ran, {len(failed)} not successful {failed or ''}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
