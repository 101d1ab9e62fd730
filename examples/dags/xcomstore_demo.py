"""A small pipeline whose XComs exercise xcomstore: a DataFrame, an ndarray, JSON and mapped tasks."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["xcomstore"])
def xcomstore_demo() -> None:
    @task
    def extract() -> pd.DataFrame:
        """200,000 sensor readings: 4.8 MB, far above the threshold, so it goes to the store."""
        rng = np.random.default_rng(7)
        return pd.DataFrame(
            {
                "sensor": rng.integers(0, 50, 200_000),
                "reading": rng.normal(20.0, 5.0, 200_000),
                "at": pd.date_range("2026-01-01", periods=200_000, freq="s", tz="UTC"),
            }
        )

    @task
    def features(frame: pd.DataFrame) -> np.ndarray:
        """A 50×3 float array: NumPy arrays fail on Airflow's default backend, not here."""
        grouped = frame.groupby("sensor")["reading"]
        return np.column_stack([grouped.mean(), grouped.std(), grouped.count()])

    @task
    def report(matrix: np.ndarray) -> dict[str, float]:
        """A small dict: stays inline in the metadata DB, exactly as Airflow stores it."""
        return {"sensors": float(matrix.shape[0]), "mean_of_means": round(float(matrix[:, 0].mean()), 3)}

    @task
    def shard(n: int) -> np.ndarray:
        """Mapped: each map index gets its own object."""
        return np.full(20_000, n, dtype="int32")

    @task
    def total(shards: list[np.ndarray]) -> int:
        return int(sum(int(s.sum()) for s in shards))

    report(features(extract()))
    total(shard.expand(n=[1, 2, 3]))


xcomstore_demo()
