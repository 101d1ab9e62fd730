"""A bounded fuzz run: hypothesis generates cases round after round until the time is up.

Each round is a hypothesis run with its own seed, `base seed + round number`, so a run is
determined by its base seed (XCOMSTORE_FUZZ_SEED) and how many rounds its time allowed; every
finding carries its case, which replays alone. Cases are decoded in batches by a Pool of
long-lived workers; nothing is shrunk (a worker crash is not a failure hypothesis could see).
"""

from __future__ import annotations

import os
import time
from collections import Counter

from hypothesis import HealthCheck, Phase, given, seed, settings
from tests.fuzz import cases, seeds
from tests.fuzz.runner import Case, Pool, Tally

BATCH = 32  # cases handed to the pool at once
ROUND = 64  # hypothesis examples (cases) per round


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def run(
    seconds: float | None = None, base_seed: int | None = None, workers: int | None = None
) -> tuple[Tally, int]:
    """Fuzz for `seconds`; the tally and the number of rounds run."""
    seconds = float(_env("XCOMSTORE_FUZZ_SECONDS", "60")) if seconds is None else seconds
    base_seed = int(_env("XCOMSTORE_FUZZ_SEED", "20261202")) if base_seed is None else base_seed
    workers = int(_env("XCOMSTORE_FUZZ_WORKERS", "2")) if workers is None else workers
    timeout = float(_env("XCOMSTORE_FUZZ_TIMEOUT", "20"))
    found = seeds.build()
    pool = Pool(found, workers=workers, timeout=timeout)
    deadline = time.monotonic() + seconds
    rounds = 0
    try:
        while time.monotonic() < deadline:
            _round(pool, found, base_seed + rounds, deadline)
            rounds += 1
    finally:
        pool.close()
    return pool.tally, rounds


def _round(pool: Pool, found: list[seeds.Seed], round_seed: int, deadline: float) -> None:
    pending: list[Case] = []

    @seed(round_seed)
    @settings(
        max_examples=ROUND,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases.cases(found))
    def generate(case: Case) -> None:
        if time.monotonic() >= deadline:
            return
        pending.append(case)
        if len(pending) >= BATCH:
            pool.run(pending)
            pending.clear()

    generate()
    if pending and time.monotonic() < deadline:
        pool.run(pending)


def report(tally: Tally, rounds: int) -> str:
    """The run's numbers, then one line per class of fault and each bad case."""
    lines = [f"{rounds} rounds: {tally.summary()}"]
    lines.append("refusals: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.refusals.items())))
    classes = Counter(f.klass for f in tally.findings)
    lines += [f"  {count:5d}  {klass}" for klass, count in classes.most_common()]
    lines += [str(f) for f in tally.findings]
    return "\n".join(lines)
