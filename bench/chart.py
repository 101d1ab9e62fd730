"""A PNG bar chart: push time, pull time and peak RSS growth per value, one bar per backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.cases import BACKENDS
from bench.report import rss_growth, seconds
from bench.runner import Outcome

_COLORS = {"default": "#8c8c8c", "common-io": "#d62728", "xcomstore": "#1f77b4", "yardstick": "#2ca02c"}
_PANELS = (("push time (s)", "push"), ("pull time (s)", "pull"), ("peak RSS growth (MB)", "rss"))


def _series(outcomes: Sequence[Outcome]) -> list[tuple[str, str]]:
    present = {(o.case.backend, o.case.compression) for o in outcomes}
    order = [(b, c) for b in BACKENDS for c in ("none", "zstd")]
    return [s for s in order if s in present]


def _metric(outcome: Outcome, panel: str) -> float | None:
    if panel != "rss":
        return seconds(outcome, panel)
    growth = [g for g in (rss_growth(outcome, "push"), rss_growth(outcome, "pull")) if g is not None]
    return max(growth) / 1e6 if growth else None


def draw(path: Path, outcomes: Sequence[Outcome], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(o.case.value.label for o in outcomes))
    series = _series(outcomes)
    found = {(o.case.backend, o.case.compression, o.case.value.label): o for o in outcomes}
    width = 0.8 / max(1, len(series))
    fig, axes = plt.subplots(len(_PANELS), 1, figsize=(max(8, 1.6 * len(labels)), 11), sharex=True)
    for ax, (ylabel, panel) in zip(axes, _PANELS, strict=True):
        for k, (backend, compression) in enumerate(series):
            for x, label in enumerate(labels):
                outcome = found.get((backend, compression, label))
                if outcome is None:
                    continue
                xpos = x - 0.4 + width * (k + 0.5)
                value = _metric(outcome, panel)
                if value is None or value <= 0:
                    ax.plot(xpos, 0, marker="x", color=_COLORS[backend], clip_on=False,
                            transform=ax.get_xaxis_transform())  # fmt: skip
                    continue
                ax.bar(xpos, value, width, color=_COLORS[backend],
                       hatch="//" if compression == "zstd" else None, edgecolor="white")  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    _legend(fig, series)
    axes[-1].set_xticks(range(len(labels)), labels, rotation=20)
    fig.suptitle(title + "   (x = fails)")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend(fig: Any, series: list[tuple[str, str]]) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=_COLORS[b], hatch="//" if c == "zstd" else None, edgecolor="white",
              label=b if c == "none" else f"{b} + zstd")
        for b, c in series
    ]  # fmt: skip
    fig.legend(handles=handles, fontsize=8, ncol=min(4, len(handles)), loc="upper center",
               bbox_to_anchor=(0.5, 0.965))  # fmt: skip
