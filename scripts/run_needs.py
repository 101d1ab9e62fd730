"""Which installs a `scripts/test ARGS` run needs, from the pytest arguments it passes on.

Prints the words `servers` (scripts/install-servers) and `browser` (scripts/install-browser)
that the run needs, one line, possibly empty. With no arguments everything is needed (the
whole suite, as CI runs it). Neither is needed when every path given lies under tests/unit;
otherwise `-m EXPR` drops what it excludes: the servers unless some test marked s3, azure or
gcs can match, the browser unless some test marked ui can. Anything it cannot tell for sure
(an unknown option, a bad expression) counts as needed: a run never lacks what it uses.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "tests" / "unit"
NEEDS = {"servers": {"s3", "azure", "gcs"}, "browser": {"ui"}}
# pytest options whose value is the next argument (so that it is not taken for a test path).
VALUE_OPTIONS = {
    "-k", "-m", "-p", "-o", "-c", "-n", "-r", "-W",
    "--deselect", "--ignore", "--ignore-glob", "--rootdir", "--basetemp", "--confcutdir",
    "--durations", "--durations-min", "--maxfail", "--tb", "--junitxml", "--junit-xml",
    "--log-level", "--log-file", "--log-cli-level", "--override-ini", "--config-file",
    "--import-mode", "--capture", "--cov", "--timeout", "--dist",
}  # fmt: skip


def markers() -> set[str]:
    """The markers pyproject.toml declares (`"name: what it means",` in its `markers` list)."""
    text = (ROOT / "pyproject.toml").read_text()
    declared = re.search(r"^markers = \[(.*?)^\]", text, re.S | re.M)
    return set(re.findall(r'^\s*"([\w-]+):', declared.group(1), re.M)) if declared else set()


def split(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The test paths and the -m expressions among pytest's arguments."""
    paths: list[str] = []
    expressions: list[str] = []
    words = iter(args)
    for word in words:
        if word in VALUE_OPTIONS:
            value = next(words, "")
            if word == "-m":
                expressions.append(value)
        elif word.startswith("-m") and not word.startswith("--"):
            expressions.append(word[2:])
        elif not word.startswith("-"):
            paths.append(word)
    return paths, expressions


def under_unit(path: str) -> bool:
    location = (ROOT / path.split("::", 1)[0]).resolve()
    return location == UNIT or UNIT in location.parents


def can_match(expression: str, wanted: set[str], known: set[str]) -> bool:
    """Whether some test carrying one of `wanted` (and any other known markers) matches."""
    from _pytest.mark.expression import Expression

    compiled = Expression.compile(expression)
    others = sorted(known - wanted)
    for marker in wanted:
        for count in range(len(others) + 1):
            for extra in itertools.combinations(others, count):
                present = {marker, *extra}
                if compiled.evaluate(lambda name, /, **_kw: name in present):  # noqa: B023
                    return True
    return False


def needs(args: Sequence[str]) -> list[str]:
    paths, expressions = split(args)
    if paths and all(under_unit(p) for p in paths):
        return []
    wanted = []
    for need, marked in NEEDS.items():
        try:
            if all(can_match(expr, marked, markers()) for expr in expressions):
                wanted.append(need)
        except Exception:
            wanted.append(need)
    return wanted


if __name__ == "__main__":
    print(" ".join(needs(sys.argv[1:])))
