"""Run the demo DAG with xcomstore on a SQLite metadata DB and a local store, then show the result.

Everything lives in the demo's own folder (.tmp/demo, or --home DIR): the Airflow home with its
airflow.cfg, the DB and the store. Each run starts afresh, deleting that folder only when it is
the demo's (it holds the demo's marker file) or empty. The settings live in airflow.cfg, not in
this process's environment, so `AIRFLOW_HOME=<folder> xcomstore ls` finds the store from any shell.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MARKER = ".xcomstore-demo"  # in a folder the demo made, so that it never deletes another


def airflow_cfg(home: Path) -> str:
    """The demo's settings, where Airflow and `xcomstore` read them in any shell."""
    return f"""\
[core]
dags_folder = {ROOT / "examples" / "dags"}
load_examples = False
xcom_backend = xcomstore.XComStoreBackend

[database]
sql_alchemy_conn = sqlite:///{home / "airflow.db"}

[xcomstore]
path = {(home / "store").as_uri()}
threshold = 64KiB
compression = zstd
"""


def fresh_home(home: Path) -> None:
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).is_file():
            sys.exit(f"demo: {home} is not empty and not a demo folder: choose another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by examples/demo.py; deleted by its next run\n")
    (home / "airflow.cfg").write_text(airflow_cfg(home))


def environment(home: Path) -> dict[str, str]:
    """This environment without any Airflow setting: the demo's come from its airflow.cfg."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    return env


def step(what: str, args: list[str], env: dict[str, str], log: Path) -> None:
    print(f"demo: {what} …", end="", flush=True)
    started = time.monotonic()
    run(args, env, log)
    print(f" {time.monotonic() - started:.0f} s")


def run(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        sys.exit(f"demo: {' '.join(args[:3])} failed, see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=ROOT / ".tmp" / "demo", help="the demo's own folder")
    home = parser.parse_args().home.resolve()
    fresh_home(home)
    env = environment(home)
    print(f"demo: Airflow home {home} (settings in {home / 'airflow.cfg'})")
    step(
        "migrating the SQLite metadata DB", [str(BIN / "airflow"), "db", "migrate"], env, home / "migrate.log"
    )
    step(
        "running DAG xcomstore_demo with dag.test()",
        [str(BIN / "airflow"), "dags", "test", "xcomstore_demo"],
        env,
        home / "dag-test.log",
    )
    show_metadata_db(home)
    print("\n== what the store holds (`xcomstore ls`, read from the store alone):")
    subprocess.run([str(BIN / "xcomstore"), "ls"], env=env, check=True)
    print(f"\ndemo: task logs in {home / 'dag-test.log'}")
    print("\nTry it in a new shell:")
    for line in next_commands(home):
        print(f"  {line}")


def next_commands(home: Path) -> list[str]:
    """Commands that work as printed in a new shell: the Airflow home says where the store is.
    The XCom to show is the largest the DB's references name (no second `xcomstore` start)."""
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("select dag_id, run_id, task_id, map_index, key, value from xcom").fetchall()
    offloaded = [(row, json.loads(row[5])) for row in rows if isinstance(row[5], (str, bytes))]
    offloaded = [(row, ref) for row, ref in offloaded if isinstance(ref, dict) and "__xcomstore__" in ref]
    (dag_id, run_id, task_id, map_index, key, _), _ = max(offloaded, key=lambda item: item[1]["stored_bytes"])
    index = f"/{map_index}" if map_index >= 0 else ""
    xcomstore = shlex.quote(str(BIN / "xcomstore"))
    return [
        f"export AIRFLOW_HOME={shlex.quote(str(home))}",
        f"{xcomstore} ls",
        f"{xcomstore} show {shlex.quote(f'{dag_id}/{run_id}/{task_id}{index}/{key}')}",
    ]


def show_metadata_db(home: Path) -> None:
    print("\n== what the metadata DB holds (table xcom):")
    with sqlite3.connect(home / "airflow.db") as db:
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
