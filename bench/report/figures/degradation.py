"""Degradation: pairwise and B-cubed F1 against the one recipe knob a sweep suite varies."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench.data.recipes import KNOBS
from bench.metrics.aggregate import median_present
from bench.report.figures.axes import legend, lens_handles, metric_label, new_figure
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, dataset_key, person
from bench.report.style import LENS_ORDER, LENS_STYLES
from bench.report.sweep import Sweep, find_sweep
from bench.report.verdict import contenders
from bench.run.labels import format_value

__all__ = ["fig_degradation"]

TITLE = "Degradation"

#: Runs of one matcher label by x position (the swept knob's value, or its rank).
Series = dict[str, dict[float, list[dict[str, Any]]]]


def fig_degradation(results: Results) -> Drawing | Skip:
    """Pairwise and B-cubed F1 vs the swept recipe knob, one line per matcher."""
    sweep = find_sweep(results.ok())
    if sweep is None:
        return Skip(
            TITLE,
            "the suite's datasets do not differ in one recipe knob (no noise or hazard sweep)",
            "a sweep suite: several `[[datasets]]` of one recipe and size differing in one "
            'override, e.g. `overrides = {"noise.typo.crm_family" = 0.3}`; '
            "then `idbench run SUITE`",
        )
    runs = [r for r in results.ok() if dataset_key(r) in sweep.values]
    xpos, ticks = _x_positions(sweep)
    fig, axes = new_figure(2, width=11.0, height=5.2, sharey=True)
    lenses = {results.label(r): results.lens(r) for r in runs}
    lines: Series = defaultdict(lambda: defaultdict(list))
    for r in runs:
        lines[results.label(r)][xpos[dataset_key(r)]].append(r)
    ends: dict[str, tuple[float, float]] = {}
    for ax, key in zip(axes, ("f1", "bcubed_f1"), strict=True):
        drawn = _draw_panel(ax, results, lines, lenses, key)
        if key == "bcubed_f1":
            ends = drawn
        _dress_panel(ax, key, sweep, ticks)
    # Knobs that move together are listed in the caption; the title names the first only.
    also = f" and {len(sweep.covaried)} knob(s) moving with it" if sweep.covaried else ""
    fig.suptitle(f"{TITLE}: F1 as {sweep.knob}{also} grows", fontsize=11)
    legend(fig, lens_handles(results, lenses, lenses, lines=True), below=True)
    caption = _caption(results, runs, sweep, xpos, ends, lenses)
    data = {
        "knob": sweep.knob,
        "covaried": list(sweep.covaried),
        "values": dict(sweep.values),
    }
    return Drawing(fig, TITLE, caption, runs, list(lenses), data)


def _x_positions(sweep: Sweep) -> tuple[dict[str, float], list[str] | None]:
    """x of each swept dataset, and tick labels when the values are not numbers.

    Numbers are their own position; other values are placed by rank of their text.
    """
    if sweep.numeric:
        return {fp: float(v) for fp, v in sweep.values.items()}, None
    order = sorted({format_value(v) for v in sweep.values.values()})
    return {fp: float(order.index(format_value(v))) for fp, v in sweep.values.items()}, order


def _draw_panel(
    ax: Any, results: Results, lines: Series, lenses: dict[str, str], key: str
) -> dict[str, tuple[float, float]]:
    """One line per matcher of the median ``key`` per x; returns each line's first and last y."""
    ends: dict[str, tuple[float, float]] = {}
    for lab, pts in sorted(lines.items()):
        xs = sorted(pts)
        ys = [median_present([person(r).get(key) for r in pts[x]]) for x in xs]
        keep = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        if not keep:
            continue
        style = LENS_STYLES[lenses[lab]]
        ax.plot(
            [x for x, _ in keep],
            [y for _, y in keep],
            color=results.colour(lab),
            ls=style.line,
            marker=style.marker,
            lw=1.6,
        )
        ends[lab] = (keep[0][1], keep[-1][1])
    return ends


def _dress_panel(ax: Any, key: str, sweep: Sweep, ticks: list[str] | None) -> None:
    ax.set_ylabel(f"{metric_label(key)} (person)")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    unit = _knob_unit(sweep.knob)
    ax.set_xlabel(f"{sweep.knob}" + (f" ({unit})" if unit else ""))
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), ticks, rotation=20, ha="right")
    ax.set_title(metric_label(key), fontsize=10)


def _knob_unit(knob: str) -> str | None:
    """Unit of a recipe knob (``noise.typo.crm_family`` -> its documented unit), if known."""
    parts = knob.split(".")
    try:
        return KNOBS[parts[0]][parts[1]].unit
    except (KeyError, IndexError, AttributeError):
        return None


def _caption(
    results: Results,
    runs: list[dict[str, Any]],
    sweep: Sweep,
    xpos: dict[str, float],
    ends: dict[str, tuple[float, float]],
    lenses: dict[str, str],
) -> str:
    xs_sorted = sorted(set(xpos.values()))
    lo_fp = [fp for fp, x in xpos.items() if x == xs_sorted[0]]
    hi_fp = [fp for fp, x in xpos.items() if x == xs_sorted[-1]]

    def best_at(fps: list[str]) -> dict[str, Any]:
        # never a baseline or an over-merging run, unless nothing else ran there
        there = [r for r in runs if dataset_key(r) in fps]
        return max(contenders(there) or there, key=lambda r: person(r).get("bcubed_f1") or 0.0)

    lo_v = format_value(sweep.values[lo_fp[0]])
    hi_v = format_value(sweep.values[hi_fp[0]])
    drops = []
    for lens in LENS_ORDER:
        labs = [lab for lab in ends if lenses[lab] == lens]
        if labs:
            d = statistics.fmean(ends[lab][1] - ends[lab][0] for lab in labs)
            drops.append(f"by {d:+.3f} on average for {lens} matchers")
    b_lo, b_hi = best_at(lo_fp), best_at(hi_fp)
    return (
        f"Each line is one matcher on datasets that differ only in {sweep.knob}"
        + (f" (moving with {', '.join(sweep.covaried)})" if sweep.covaried else "")
        + ": "
        f"pairwise F1 (left) and B-cubed F1 (right) as the knob goes from {lo_v} to {hi_v}. "
        f"Solid lines are deterministic matchers, dashed probabilistic. "
        f"From {lo_v} to {hi_v}, B-cubed F1 changes "
        + ", ".join(drops)
        + f". At {sweep.knob} = {lo_v} the best is {results.label(b_lo)} "
        f"({person(b_lo)['bcubed_f1']:.3f}); at {hi_v} it is {results.label(b_hi)} "
        f"({person(b_hi)['bcubed_f1']:.3f})."
    )
