"""The printed table (times, throughput, RSS growth, bytes stored, ratios) and the JSON file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cases import YARDSTICK
from bench.runner import Outcome

REFERENCES = (("cio", "common-io"), ("yard", YARDSTICK))
_MB = 1e6
BUSY_PERCENT = 25.0
ERROR_WIDTH = 160  # the JSON keeps the whole line
# (title, width) of each column after the case id.
_COLUMNS = (
    ("status", 6), ("push s", 8), ("MB/s", 6), ("pull s", 8), ("MB/s", 6),
    ("+RSS push", 9), ("+RSS pull", 9), ("stored MB", 9),
    ("push/cio", 8), ("pull/cio", 8), ("push/yard", 9), ("pull/yard", 9),
)  # fmt: skip


def seconds(outcome: Outcome, stage: str) -> float | None:
    record = getattr(outcome, stage)
    if outcome.status != "ok" or not record:
        return None
    return float(record["seconds"])


def busy(outcome: Outcome) -> bool:
    """Whether other processes used much of the machine while this case ran."""
    return float(outcome.extra.get("others_cpu_percent", 0.0)) > BUSY_PERCENT


def rss_growth(outcome: Outcome, stage: str) -> int | None:
    record = getattr(outcome, stage)
    return int(record["peak_growth"]) if outcome.status == "ok" and record else None


def _reference(outcome: Outcome, outcomes: Sequence[Outcome], backend: str) -> Outcome | None:
    mine = (outcome.case.value, outcome.case.compression, outcome.case.store)
    for other in outcomes:
        theirs = (other.case.value, other.case.compression, other.case.store)
        if other.case.backend == backend and theirs == mine:
            return other
    return None


def ratio(outcome: Outcome, outcomes: Sequence[Outcome], backend: str, stage: str) -> float | None:
    """This case's time divided by the reference backend's, same value, compression and store."""
    reference = _reference(outcome, outcomes, backend)
    mine, theirs = seconds(outcome, stage), reference and seconds(reference, stage)
    return mine / theirs if mine is not None and theirs else None


def _throughput(outcome: Outcome, stage: str) -> float | None:
    took = seconds(outcome, stage)
    return outcome.nbytes / _MB / took if took and outcome.nbytes >= _MB else None


def _cell(value: float | None, width: int, digits: int = 3, suffix: str = "") -> str:
    return f"{'-' if value is None else f'{value:.{digits}f}{suffix}':>{width}}"


def _row(outcome: Outcome, outcomes: Sequence[Outcome], id_width: int) -> str:
    rss = [rss_growth(outcome, s) for s in ("push", "pull")]
    cells = [
        f"{outcome.case.case_id:<{id_width}}",
        f"{outcome.status + ('*' if busy(outcome) else ''):<6}",
        _cell(seconds(outcome, "push"), 8),
        _cell(_throughput(outcome, "push"), 6, 0),
        _cell(seconds(outcome, "pull"), 8),
        _cell(_throughput(outcome, "pull"), 6, 0),
        *(_cell(None if r is None else r / _MB, 9, 1) for r in rss),
        _cell(outcome.stored_bytes / _MB if outcome.status == "ok" else None, 9, 2),
    ]
    for _, backend in REFERENCES:
        width = 9 if backend == YARDSTICK else 8
        for stage in ("push", "pull"):
            cells.append(_cell(ratio(outcome, outcomes, backend, stage), width, 2, "x"))
    return " ".join(cells)


def table(outcomes: Sequence[Outcome]) -> str:
    """The whole table, then one line per failing case with its error."""
    id_width = max([len(o.case.case_id) for o in outcomes] + [4])
    titles = [f"{t:>{w}}" if i else f"{t:<{w}}" for i, (t, w) in enumerate(_COLUMNS)]
    header = " ".join([f"{'case':<{id_width}}", *titles])
    lines = [header, "-" * len(header), *(_row(o, outcomes, id_width) for o in outcomes)]
    failures = [o for o in outcomes if o.status != "ok"]
    if failures:
        lines += ["", "Failures:"]
        lines += [f"  {o.case.case_id}: {(o.error or '')[:ERROR_WIDTH]}" for o in failures]
    return "\n".join(lines)


def legend(repeat: int = 1) -> str:
    runs = (
        f"Values under 100 MB: the run with the median push+pull time of {repeat} (all runs in the JSON).\n"
    )
    return (runs if repeat > 1 else "") + (
        "push/pull s: wall time of ti.xcom_push / ti.xcom_pull inside the task process; MB/s: value "
        "size in memory / time.\n+RSS: peak RSS growth (MB) during the operation. stored: bytes in "
        "the store plus the DB row.\n/cio, /yard: time divided by common-io's, or by the direct "
        "write/read yardstick's, for the same value and compression (the default backend is compared uncompressed).\n"
        "Before timing, each task pushes / pulls a small value of the same kind (160 KB; a 96 KiB string "
        "for ints and JSON) that every backend offloads: first-use costs (the store's client, imports "
        "such as pyarrow's) are in the JSON as warmup_seconds, not in these times.\n"
        f"ok*: processes outside the bench used over {BUSY_PERCENT:.0f}% of the machine's CPU meanwhile; "
        "its times are suspect."
    )


def write_json(path: Path, outcomes: Sequence[Outcome], meta: dict[str, Any]) -> None:
    rows = []
    for outcome in outcomes:
        row = outcome.to_dict()
        row["ratios"] = {
            f"{stage}_vs_{short}": ratio(outcome, outcomes, backend, stage)
            for short, backend in REFERENCES
            for stage in ("push", "pull")
        }
        rows.append(row)
    path.write_text(json.dumps({"meta": meta, "results": rows}, indent=1, default=str))
