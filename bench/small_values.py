"""Small values, which stay in the metadata DB: what xcomstore adds to the default backend.

`python -m bench.small_values` times serialize_value + deserialize_value (what a task does
around the DB round trip) for the default BaseXCom and for XComStoreBackend, in one process,
many rounds each, best of several repeats: the differences are microseconds, far below the
noise of one timed xcom_push in a DAG.
"""

from __future__ import annotations

import os
import tempfile
import timeit
from typing import Any

ROUNDS = 2000
REPEATS = 7
VALUES: dict[str, Any] = {
    "int": 42,
    "str 100 B": "x" * 100,
    "dict 1 KB": {f"key{i}": [i, f"v{i}", i / 3] for i in range(40)},
    "list 30 KB": [{"id": i, "name": f"n{i}", "ok": True} for i in range(1000)],
    "tuple": (1, "two", 3.0),
}


class _Row:
    """What Airflow hands deserialize_value: an object with the stored value."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _per_round(backend: Any, value: Any) -> float:
    def round_trip() -> None:
        stored = backend.serialize_value(value, key="k", task_id="t", dag_id="d", run_id="r", map_index=-1)
        backend.deserialize_value(_Row(stored))

    timer = timeit.Timer(round_trip)
    return min(timer.repeat(REPEATS, ROUNDS)) / ROUNDS


def main() -> None:
    os.environ.setdefault("AIRFLOW__XCOMSTORE__PATH", f"file://{tempfile.mkdtemp(prefix='xcs-small-')}")
    from airflow.sdk.bases.xcom import BaseXCom

    from xcomstore import XComStoreBackend

    print(f"{'value':<12} {'default µs':>11} {'xcomstore µs':>13} {'ratio':>6}")
    for name, value in VALUES.items():
        default = _per_round(BaseXCom, value) * 1e6
        ours = _per_round(XComStoreBackend, value) * 1e6
        print(f"{name:<12} {default:>11.1f} {ours:>13.1f} {ours / default:>5.2f}x")
    print("\nserialize_value + deserialize_value per value, best of", REPEATS, "x", ROUNDS, "rounds;")
    print("a real xcom_push / xcom_pull adds the DB round trip (about 9 ms each in the DAG bench).")


if __name__ == "__main__":
    main()
