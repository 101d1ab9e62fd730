"""Hostile objects, sealed as valid, never crash, hang or exhaust a reader.

Every valid object of every codec and compression (tests/fuzz/seeds.py) has its payload mutated
— bit flips, byte runs, truncation, insertion, and format-aware changes to Arrow IPC offsets,
lengths and buffers and to .npy headers (tests/fuzz/mutate.py) — and is resealed, as anyone who
can write to the bucket can do. Each mutant is then read, pulled, previewed and downloaded in a
worker process under a memory limit and a time limit (tests/fuzz/runner.py). Each outcome must
be a value or an XComStoreError: never a signal, a hang, another exception, a peak of memory
over twice the value's legitimate size (plus working room), or a preview over 1 MiB.

About 100 s by default on 2 workers. A longer run:
    XCOMSTORE_FUZZ_SECONDS=1800 .venv/bin/python -m pytest tests/fuzz
    .venv/bin/python -m tests.fuzz --seconds 1800 [--seed N] [--workers 2]
and one case again: .venv/bin/python -m tests.fuzz --replay '<the replay line of a finding>'.
"""

from __future__ import annotations

from tests.fuzz import driver


def test_hostile_sealed_objects_decode_or_are_refused() -> None:
    tally, rounds = driver.run()
    print(driver.report(tally, rounds))
    assert tally.cases > 0
    assert not tally.findings, driver.report(tally, rounds)
