"""Fuzzing the decoders with hostile, correctly sealed objects.

    seeds.py     valid objects of every codec and compression, pushed through a real XComStore
    mutate.py    payload and header mutations, and reseal(): both v3 digests recomputed
    cases.py     the hypothesis strategies that pick a seed and its mutations
    worker.py    a long-lived child that reads, pulls, previews and downloads each case
    runner.py    the workers (restarted after a crash or hang) and the verdict on each outcome
    driver.py    rounds of hypothesis runs until the time is up (seed = base seed + round)

Runs:
    .venv/bin/python -m pytest tests/fuzz                      ~60 s, part of the suite
    XCOMSTORE_FUZZ_SECONDS=1800 .venv/bin/python -m pytest tests/fuzz
    .venv/bin/python -m tests.fuzz --seconds 1800 --seed 7     the same, report on stdout
    .venv/bin/python -m tests.fuzz --replay '<a finding's replay line>'
Settings: XCOMSTORE_FUZZ_SECONDS (60), XCOMSTORE_FUZZ_SEED (20261202), XCOMSTORE_FUZZ_WORKERS
(2), XCOMSTORE_FUZZ_TIMEOUT (20 s per target), XCOMSTORE_FUZZ_MEMORY (2 GiB of address space
per worker beyond its own), XCOMSTORE_FUZZ_MAX_SIZE (the workers' max_size, 32MiB; empty: none).
"""
