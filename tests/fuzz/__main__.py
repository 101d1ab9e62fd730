"""`python -m tests.fuzz`: a fuzz run of any length, or one case replayed.

.venv/bin/python -m tests.fuzz --seconds 1800 --seed 7 --workers 2
.venv/bin/python -m tests.fuzz --replay '["numpy-U8-zstd", [["npy_header", "descr", 0]]]'
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.fuzz import driver, seeds
from tests.fuzz.runner import Case, Pool


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--seconds", type=float, default=None, help="how long (XCOMSTORE_FUZZ_SECONDS, 60)")
    parser.add_argument("--seed", type=int, default=None, help="base seed (XCOMSTORE_FUZZ_SEED)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (2)")
    parser.add_argument("--replay", help="one case, as a finding's replay line prints it")
    args = parser.parse_args()
    if args.replay:
        name, mutations = json.loads(args.replay)
        pool = Pool(seeds.build(), workers=1)
        try:
            pool.run([Case(name, tuple(tuple(m) for m in mutations))])
        finally:
            pool.close()
        print(pool.tally.summary())
        for finding in pool.tally.findings:
            print(finding)
        return 1 if pool.tally.findings else 0
    tally, rounds = driver.run(args.seconds, args.seed, args.workers)
    print(driver.report(tally, rounds))
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.exit(main())
