"""Scaling: match time, records/s and quality against records, with fitted exponents.

Time alone hides a matcher whose clusters fall apart at scale, so the third panel draws
pairwise F1 (person truth) at each size, with a size more than
:data:`~bench.run.scale.COLLAPSE_F1_DROP` below the matcher's F1 at its smallest size
circled in red, as ``idbench scale`` flags it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from matplotlib.figure import Figure

from bench.metrics.aggregate import fit_power_law, match_seconds, median_present
from bench.report.figures.axes import legend, lens_handles, lens_tag, new_figure
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, records_per_s
from bench.report.style import LENS_STYLES
from bench.report.sweep import size_series
from bench.report.verdict import is_baseline
from bench.run.scale import COLLAPSE_F1_DROP

__all__ = ["fig_scaling"]

TITLE = "Scaling"

#: Runs of each matcher label by dataset size (records).
BySize = dict[str, dict[int, list[dict[str, Any]]]]


def fig_scaling(results: Results) -> Drawing | Skip:
    """Match time and records/s vs records (log-log) with the fitted exponent per matcher."""
    scaled = _runs_by_size(results)
    if not scaled:
        return Skip(
            TITLE,
            "no matcher ran on datasets of two or more sizes",
            'a scaling suite: one recipe at several sizes (e.g. `size = "tiny"` and '
            '`size = "small"` in two `[[datasets]]`); then `idbench run SUITE`',
        )
    runs = [r for sizes in scaled.values() for rs in sizes.values() for r in rs]
    lenses = {lab: results.lens(next(iter(sizes.values()))[0]) for lab, sizes in scaled.items()}
    fig, exps, collapses = _draw(results, scaled, lenses)
    n_max = max(n for sizes in scaled.values() for n in sizes)
    at_max = [r for r in runs if int(r["dataset"]["n_records"]) == n_max]
    # a baseline that does nothing is always fastest: never named as such
    fastest = max(
        [r for r in at_max if not is_baseline(r)] or at_max, key=lambda r: records_per_s(r) or 0.0
    )
    steep = max(exps, key=lambda lab: exps[lab])
    flat = min(exps, key=lambda lab: exps[lab])
    caption = (
        f"Match time (left), throughput (middle) and pairwise F1 (right) of each matcher on "
        f"datasets of growing size, time and throughput log-log; b in the legend is the "
        f"fitted exponent of time ~ records^b (b = 1 is linear, b = 2 quadratic). Steepest: "
        f"{steep} (b = {exps[steep]:.2f}); flattest: {flat} (b = {exps[flat]:.2f}). At the "
        f"largest size ({n_max:,} records) the fastest is {results.label(fastest)} at "
        f"{records_per_s(fastest) or 0:,.0f} records/s. {_collapse_sentence(collapses)}"
    )
    facts = {"exponents": exps, "collapses": collapses}
    return Drawing(fig, TITLE, caption, runs, list(exps), facts)


def _f1(run: dict[str, Any]) -> float | None:
    """Pairwise F1 of a run against person truth (``None`` when not evaluated)."""
    value = (run.get("person") or {}).get("f1")
    return None if value is None else float(value)


def _collapse_sentence(collapses: dict[str, list[int]]) -> str:
    """What the quality panel shows about collapses, in one sentence."""
    if not collapses:
        return (
            f"No matcher's F1 falls more than {COLLAPSE_F1_DROP} below its F1 at its smallest size."
        )
    named = "; ".join(
        f"{lab} at {', '.join(f'{n:,}' for n in sizes)} records"
        for lab, sizes in sorted(collapses.items())
    )
    return (
        f"Circled in red: F1 more than {COLLAPSE_F1_DROP} below the matcher's F1 at its "
        f"smallest size (a collapse): {named}."
    )


def _runs_by_size(results: Results) -> BySize:
    """Timed runs of the size series, per matcher label and size; labels with 2+ sizes."""
    by_label: BySize = defaultdict(lambda: defaultdict(list))
    for r in size_series(results.ok()):
        n = int((r.get("dataset") or {}).get("n_records") or 0)
        if n > 0 and (match_seconds(r) or 0) > 0:
            by_label[results.label(r)][n].append(r)
    return {lab: sizes for lab, sizes in by_label.items() if len(sizes) >= 2}


def _draw(
    results: Results, scaled: BySize, lenses: dict[str, str]
) -> tuple[Figure, dict[str, float], dict[str, list[int]]]:
    """The three panels, one line per matcher.

    Returns the figure, each fitted exponent and, per matcher, the sizes whose F1
    collapsed.
    """
    fig, (ax_t, ax_r, ax_q) = new_figure(3, width=15.0, height=5.4)
    exps: dict[str, float] = {}
    collapses: dict[str, list[int]] = {}
    for lab, sizes in sorted(scaled.items()):
        ns = sorted(sizes)
        ts = [median_present([match_seconds(r) for r in sizes[n]]) for n in ns]
        fit = fit_power_law(ns, ts)
        if fit is None:
            continue
        exps[lab] = fit.b
        style = {
            "color": results.colour(lab),
            "ls": LENS_STYLES[lenses[lab]].line,
            "marker": LENS_STYLES[lenses[lab]].marker,
            "lw": 1.6,
        }
        ax_t.plot(ns, ts, **style)
        ax_r.plot(ns, [n / t for n, t in zip(ns, ts, strict=True)], **style)
        if lost := _draw_quality(
            ax_q, ns, [median_present([_f1(r) for r in sizes[n]]) for n in ns], style
        ):
            collapses[lab] = lost
    for ax in (ax_t, ax_r, ax_q):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dataset size (records, log scale)")
        ax.grid(True, which="both", alpha=0.25)
    ax_t.set_ylabel("match time (s, fit + match, log scale)")
    ax_t.set_title("time: lower is better", fontsize=10)
    ax_r.set_ylabel("throughput (records/s, log scale)")
    ax_r.set_title("throughput: higher is better", fontsize=10)
    ax_q.set_yscale("linear")
    ax_q.set_ylim(0.0, 1.02)
    ax_q.set_ylabel("pairwise F1 (person truth)")
    ax_q.set_title("quality: should hold as data grows", fontsize=10)
    fig.suptitle(
        f"{TITLE}: time grows as records^b (b fitted on log-log); quality beside it", fontsize=11
    )
    suffix = {lab: f"{lens_tag(lab, lenses[lab])}, b={b:.2f}" for lab, b in exps.items()}
    legend(fig, lens_handles(results, exps, lenses, lines=True, suffix=suffix), below=True)
    return fig, exps, collapses


def _draw_quality(
    ax: Any, ns: list[int], f1s: list[float | None], style: dict[str, Any]
) -> list[int]:
    """One matcher's F1 line; circle and return the sizes that collapsed."""
    pts = [(n, f) for n, f in zip(ns, f1s, strict=True) if f is not None]
    if not pts:
        return []
    ax.plot([n for n, _ in pts], [f for _, f in pts], **style)
    floor = pts[0][1] - COLLAPSE_F1_DROP
    lost = [n for n, f in pts[1:] if f < floor]
    if lost:
        ax.scatter(
            lost,
            [f for n, f in pts if n in lost],
            s=220,
            facecolors="none",
            edgecolors="#c62828",
            linewidths=2.0,
            zorder=5,
        )
    return lost
