"""Quality vs throughput: B-cubed F1 against records/s, with the Pareto frontier."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.report.figures.axes import (
    figure_title,
    legend,
    lens_handles,
    metric_label,
    new_figure,
    overlap_sizes,
)
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, dataset_title, person, records_per_s
from bench.report.style import LENS_STYLES
from bench.report.verdict import OVERMERGE_RULE, contenders, is_baseline, overmerge_reason

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
    """B-cubed F1 vs records/s on one dataset, with the frontier of the recommendable runs.

    The frontier runs through runs that are neither baselines nor over-merging
    (:func:`bench.report.verdict.contenders`); over-merging runs are drawn with a red
    ring and named, baselines are drawn but never called best or fastest.
    """
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
    _, runs = picked
    lenses = {results.label(r): results.lens(r) for r in runs}
    fair = contenders(runs)
    front = [fair[i] for i in pareto_front(_points(fair))] if fair else []
    title = figure_title(TITLE, runs[0])
    fig = _draw(results, runs, front, lenses, title)
    frontier = [results.label(r) for r in front]
    caption = (
        f"Each point is one run on {dataset_title(runs[0])}: B-cubed F1 (higher is better) "
        f"against records matched per second (further right is faster, log scale). "
        + _winners_sentence(results, fair)
        + (
            "The dotted staircase is the Pareto frontier of the runs that are neither "
            "baselines nor over-merging: none of those is both faster and more accurate "
            f"than the ones on it ({', '.join(dict.fromkeys(frontier))})."
            if front
            else "No run qualifies for a frontier (all are baselines or over-merge)."
        )
        + _flagged_sentence(results, runs)
        + _lens_sentence(results, fair, lambda r: person(r)["bcubed_f1"], "B-cubed F1")
    )
    data = {
        "frontier_run_keys": [r["run_key"] for r in front],
        "overmerging_run_keys": [r["run_key"] for r in runs if overmerge_reason(r)],
    }
    return Drawing(fig, title, caption, runs, list(lenses), data)


def _points(runs: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(records_per_s(r) or 0.0, person(r)["bcubed_f1"]) for r in runs]


def _draw(
    results: Results,
    runs: list[dict[str, Any]],
    front: list[dict[str, Any]],
    lenses: dict[str, str],
    title: str,
) -> Figure:
    fig, ax = new_figure(width=9.0, height=5.2)
    pts = _points(runs)
    for r, (x, y), size in zip(runs, pts, overlap_sizes(pts), strict=True):
        lab = results.label(r)
        bad = overmerge_reason(r) is not None
        ax.scatter(
            x,
            y,
            color=results.colour(lab),
            marker=LENS_STYLES[lenses[lab]].marker,
            s=size,
            zorder=3,
            edgecolors="#d62728" if bad else "white",
            linewidths=2.0 if bad else 0.6,
        )
        if bad:
            ax.annotate(
                f"{lab}: over-merges",
                (x, y),
                xytext=(8, -12),
                textcoords="offset points",
                fontsize=8,
                color="#d62728",
            )
    ax.set_xscale("log")
    ax.set_xlabel("throughput (records/s, log scale; fit + match time)")
    ax.set_ylabel(f"{metric_label('bcubed_f1')} (person)")
    ax.set_ylim(min(0.0, min(p[1] for p in pts) - 0.05), 1.02)
    _pad_log_x(ax, [p[0] for p in pts])
    if front:
        # The staircase bounds what is attainable: from the left edge at the best quality,
        # down at each frontier point, to the axis at the fastest run (ann-benchmarks style).
        fx = [records_per_s(r) or 0.0 for r in front]
        fy = [person(r)["bcubed_f1"] for r in front]
        ax.step(
            [ax.get_xlim()[0], *fx, fx[-1]],
            [fy[0], *fy, ax.get_ylim()[0]],
            where="pre",
            color="#444444",
            lw=1.2,
            ls=":",
            zorder=2,
        )
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize=11)
    handles = lens_handles(results, lenses, lenses)
    handles.append(Line2D([], [], color="#444444", ls=":", label="Pareto frontier"))
    if any(overmerge_reason(r) for r in runs):
        handles.append(
            Line2D(
                [],
                [],
                color="#999999",
                marker="o",
                ls="",
                mec="#d62728",
                mew=2.0,
                label="red ring: over-merges",
            )
        )
    legend(fig, handles)
    return fig


def _pad_log_x(ax: Any, xs: Sequence[float]) -> None:
    lo, hi = min(xs), max(xs)
    if lo == hi:
        ax.set_xlim(lo / 3, hi * 3)
    else:
        ax.set_xlim(lo / 1.6, hi * 1.6)


def _winners_sentence(results: Results, fair: list[dict[str, Any]]) -> str:
    """Who is most accurate and who is fastest among the recommendable runs."""
    if not fair:
        return ""
    best = max(fair, key=lambda r: (person(r)["bcubed_f1"], records_per_s(r) or 0.0))
    fast = max(fair, key=lambda r: (records_per_s(r) or 0.0, person(r)["bcubed_f1"]))
    if best is fast:
        return (
            f"Among runs that are neither baselines nor over-merging, the most accurate is "
            f"also the fastest: {results.label(best)} (B-cubed F1 "
            f"{person(best)['bcubed_f1']:.3f}, {records_per_s(best):,.0f} records/s). "
        )
    return (
        f"Among runs that are neither baselines nor over-merging, the highest B-cubed F1 "
        f"is {person(best)['bcubed_f1']:.3f} ({results.label(best)}, "
        f"{records_per_s(best):,.0f} records/s); the fastest is {results.label(fast)} at "
        f"{records_per_s(fast):,.0f} records/s (B-cubed F1 {person(fast)['bcubed_f1']:.3f}). "
    )


def _flagged_sentence(results: Results, runs: list[dict[str, Any]]) -> str:
    """Name the over-merging runs (red rings) and the baselines drawn."""
    text = ""
    bad = sorted({results.label(r) for r in runs if overmerge_reason(r)})
    if bad:
        text += (
            f" Red rings mark runs that over-merge ({OVERMERGE_RULE}): {', '.join(bad)}; "
            "their B-cubed F1 overstates them."
        )
    base = sorted({results.label(r) for r in runs if is_baseline(r)})
    if base:
        text += f" Baselines (reference points, not candidates): {', '.join(base)}."
    return text


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
