"""Hostile objects, sealed as valid, never crash, hang or exhaust a reader.

Every valid object of every codec and compression (tests/fuzz/seeds.py) has its payload mutated
— bit flips, byte runs, truncation, insertion, and format-aware changes to Arrow IPC offsets,
lengths and buffers and to .npy headers (tests/fuzz/mutate.py) — and is resealed, as anyone who
can write to the bucket can do. Each mutant is then read, pulled, previewed and downloaded in a
worker process under a memory limit and a time limit (tests/fuzz/runner.py). Each outcome must
be a value or an XComStoreError: never a signal, a hang, another exception, a peak of memory
over twice the value's legitimate size (plus working room), or a preview over 1 MiB.

About 60 s by default on 2 workers. A longer run:
    XCOMSTORE_FUZZ_SECONDS=1800 .venv/bin/python -m pytest tests/fuzz
    .venv/bin/python -m tests.fuzz --seconds 1800 [--seed N] [--workers 2]
and one case again: .venv/bin/python -m tests.fuzz --replay '<the replay line of a finding>'.
"""

from __future__ import annotations

import io

from tests.fuzz import driver, mutate, seeds

from xcomstore.format.container import decode_payload, open_object, verify_payload


def test_hostile_sealed_objects_decode_or_are_refused() -> None:
    tally, rounds = driver.run()
    print(driver.report(tally, rounds))
    assert tally.cases > 0
    assert not tally.findings, driver.report(tally, rounds)
    # Every mutant passed its seal: a checksum refusal would mean reseal() is broken, and the
    # decoders were never reached.
    assert not [k for k in tally.refusals if k.endswith("CorruptObjectError")], driver.report(tally, rounds)


def test_reseal_makes_a_mutant_pass_every_check() -> None:
    seed = next(s for s in seeds.build() if s.name == "bytes-zstd")
    mutant = mutate.apply(seed.data, [("run", "plain", 0, 4, 0x41)])
    assert mutant != seed.data
    assert mutant == mutate.reseal(mutant[:-8] + b"XXXXXXXX")  # whatever the old seal was
    verify_payload(open_object(io.BytesIO(mutant), len(mutant)))
    obj = open_object(io.BytesIO(mutant), len(mutant), mutate.label(mutant))
    value = decode_payload(obj, lambda stream: stream.read())
    assert value.startswith(b"AAAA")
    assert value[4:] == (bytes(range(256)) * 20)[4:]
