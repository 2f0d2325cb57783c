"""Quality vs throughput: B-cubed F1 against records/s, with the Pareto frontier."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.report.figures.axes import (
    legend,
    lens_handles,
    metric_label,
    new_figure,
    others_sentence,
)
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, dataset_title, person, records_per_s
from bench.report.style import LENS_STYLES

__all__ = ["fig_pareto", "pareto_front"]

TITLE = "Quality vs throughput"


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both x and y (higher is better)."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def fig_pareto(results: Results) -> Drawing | Skip:
    """B-cubed F1 vs records/s on the primary dataset, with the Pareto frontier."""
    usable = [
        r for r in results.ok() if records_per_s(r) and person(r).get("bcubed_f1") is not None
    ]
    picked = results.on_primary_dataset(usable)
    if picked is None:
        return Skip(
            TITLE,
            "no successful run with both a B-cubed F1 and a throughput",
            "any suite: `idbench run SUITE`",
        )
    fp, runs = picked
    lenses = {results.label(r): results.lens(r) for r in runs}
    pts = [(records_per_s(r), person(r)["bcubed_f1"]) for r in runs]
    front = pareto_front(pts)
    fig = _draw(results, runs, pts, front, lenses)
    frontier = [results.label(runs[i]) for i in front]
    caption = (
        f"Each point is one run on {dataset_title(runs[0])}: B-cubed F1 (higher is better) "
        f"against records matched per second (further right is faster, log scale). "
        + _winners_sentence(results, runs)
        + "The dotted staircase is the Pareto frontier: no run is both faster and more "
        f"accurate than those on it ({', '.join(dict.fromkeys(frontier))})."
        + _lens_sentence(results, runs, lambda r: person(r)["bcubed_f1"], "B-cubed F1")
        + others_sentence(results, fp)
    )
    data = {"frontier_run_keys": [runs[i]["run_key"] for i in front]}
    return Drawing(fig, TITLE, caption, runs, list(lenses), data)


def _draw(
    results: Results,
    runs: list[dict[str, Any]],
    pts: list[tuple[float, float]],
    front: list[int],
    lenses: dict[str, str],
) -> Figure:
    fig, ax = new_figure(width=9.0, height=5.2)
    for r, (x, y) in zip(runs, pts, strict=True):
        lab = results.label(r)
        ax.scatter(
            x,
            y,
            color=results.colour(lab),
            marker=LENS_STYLES[lenses[lab]].marker,
            s=55,
            zorder=3,
            edgecolors="white",
            linewidths=0.6,
        )
    fx = [pts[i][0] for i in front]
    fy = [pts[i][1] for i in front]
    ax.set_xscale("log")
    ax.set_xlabel("throughput (records/s, log scale; fit + match time)")
    ax.set_ylabel(f"{metric_label('bcubed_f1')} (person)")
    ax.set_ylim(min(0.0, min(fy) - 0.05), 1.02)
    _pad_log_x(ax, [p[0] for p in pts])
    # The staircase bounds what is attainable: from the left edge at the best quality,
    # down at each frontier point, to the axis at the fastest run (ann-benchmarks style).
    x_left = ax.get_xlim()[0]
    ax.step(
        [x_left, *fx, fx[-1]],
        [fy[0], *fy, ax.get_ylim()[0]],
        where="pre",
        color="#444444",
        lw=1.2,
        ls=":",
        zorder=2,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(f"{TITLE} on {dataset_title(runs[0])}", fontsize=11)
    handles = lens_handles(results, lenses, lenses)
    handles.append(Line2D([], [], color="#444444", ls=":", label="Pareto frontier"))
    legend(fig, handles)
    return fig


def _pad_log_x(ax: Any, xs: Sequence[float]) -> None:
    lo, hi = min(xs), max(xs)
    if lo == hi:
        ax.set_xlim(lo / 3, hi * 3)
    else:
        ax.set_xlim(lo / 1.6, hi * 1.6)


def _winners_sentence(results: Results, runs: list[dict[str, Any]]) -> str:
    """Who is most accurate and who is fastest (one sentence when it is the same run)."""
    best = max(runs, key=lambda r: (person(r)["bcubed_f1"], records_per_s(r)))
    fast = max(runs, key=lambda r: (records_per_s(r), person(r)["bcubed_f1"]))
    if best is fast:
        return (
            f"The most accurate run is also the fastest: {results.label(best)} (B-cubed F1 "
            f"{person(best)['bcubed_f1']:.3f}, {records_per_s(best):,.0f} records/s). "
        )
    return (
        f"The highest B-cubed F1 is {person(best)['bcubed_f1']:.3f} "
        f"({results.label(best)}, {records_per_s(best):,.0f} records/s); the fastest is "
        f"{results.label(fast)} at {records_per_s(fast):,.0f} records/s "
        f"(B-cubed F1 {person(fast)['bcubed_f1']:.3f}). "
    )


def _lens_sentence(
    results: Results,
    runs: Sequence[dict[str, Any]],
    key: Callable[[dict[str, Any]], float],
    what: str,
) -> str:
    """' By lens (what), best deterministic: X (0.9); best probabilistic: Y (0.95).'"""
    parts = []
    for lens, of_lens in results.by_lens(runs).items():
        best = max(of_lens, key=key)
        parts.append(f"best {lens}: {results.label(best)} ({key(best):.3f})")
    if len(parts) < 2:
        return ""
    return f" By lens ({what}), " + "; ".join(parts) + "."
