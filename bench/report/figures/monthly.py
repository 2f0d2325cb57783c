"""Quality per month: pairwise precision, recall and F1 per calendar month, per matcher."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from bench.report.figures.axes import (
    figure_title,
    legend,
    lens_handles,
    metric_label,
    new_figure,
)
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, dataset_title, series
from bench.report.style import LENS_STYLES

__all__ = ["fig_monthly"]

TITLE = "Quality per month"
_METRICS = ("precision", "recall", "f1")

#: Values per matcher label, metric and month (one per run).
Monthly = dict[str, dict[str, dict[str, list[float]]]]


def fig_monthly(results: Results) -> Drawing | Skip:
    """Precision, recall and F1 per month of the horizon, one line per matcher."""
    usable = [r for r in results.ok() if series(r, "monthly")]
    picked = results.on_primary_dataset(usable)
    if picked is None:
        return Skip(
            TITLE,
            "no run record carries metrics per month (`monthly`)",
            "runs evaluated with temporal metrics on a generated dataset with a time "
            "horizon; `idbench run --recompute` adds them to stored runs",
        )
    _, runs = picked
    months = sorted({str(m["month"]) for r in runs for m in series(r, "monthly")})
    lenses = {results.label(r): results.lens(r) for r in runs}
    per = _monthly_values(results, runs)
    fig, axes = new_figure(3, width=12.0, height=5.0, sharey=True)
    x = np.arange(len(months))
    step = max(1, math.ceil(len(months) / 8))
    for ax, key in zip(axes, _METRICS, strict=True):
        _draw_panel(ax, results, per, lenses, key, months)
        ax.set_xticks(x[::step], months[::step], rotation=30, ha="right")
        ax.set_xlabel("month (of the record's timestamp)")
        ax.set_title(metric_label(key), fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("value (person level)")
    title = figure_title(TITLE, runs[0])
    fig.suptitle(title, fontsize=11)
    legend(fig, lens_handles(results, lenses, lenses, lines=True), below=True)
    caption = (
        f"Pairwise precision, recall and F1 per calendar month on {dataset_title(runs[0])}, "
        f"{months[0]} to {months[-1]}: how matching quality changes as cookies, phones and "
        f"e-mail addresses churn; each month's records are scored against their whole "
        f"person." + _trend_sentence(per, months, lenses)
    )
    return Drawing(fig, title, caption, runs, list(lenses), {"months": months})


def _monthly_values(results: Results, runs: list[dict[str, Any]]) -> Monthly:
    per: Monthly = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs:
        for m in series(r, "monthly"):
            for key in _METRICS:
                if m.get(key) is not None:
                    per[results.label(r)][key][str(m["month"])].append(float(m[key]))
    return per


def _draw_panel(
    ax: Any,
    results: Results,
    per: Monthly,
    lenses: dict[str, str],
    key: str,
    months: list[str],
) -> None:
    """One line per matcher: the mean ``key`` of each month it has values for."""
    for lab in sorted(per):
        pts = [
            (i, statistics.fmean(per[lab][key][mo]))
            for i, mo in enumerate(months)
            if per[lab][key].get(mo)
        ]
        if pts:
            style = LENS_STYLES[lenses[lab]]
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=results.colour(lab),
                ls=style.line,
                marker=style.marker,
                markersize=4,
                lw=1.5,
            )


#: F1 changes smaller than this between the first and the last month count as none.
STEADY = 0.005


def _trend_sentence(per: Monthly, months: list[str], lenses: dict[str, str]) -> str:
    """Whose F1 moves most from the first month to the last, and who ends best.

    Baselines are left out; changes below :data:`STEADY` are called no change.
    """
    changes = {}
    for lab in per:
        if lenses.get(lab) == "baseline":
            continue
        f1 = [statistics.fmean(per[lab]["f1"][mo]) for mo in months if per[lab]["f1"].get(mo)]
        if len(f1) >= 2:
            changes[lab] = (f1[0], f1[-1])
    if not changes:
        return ""
    moves = {lab: b - a for lab, (a, b) in changes.items()}
    last_best = max(changes, key=lambda lab: (changes[lab][1], lab))
    ending = f" In the last month the best F1 is {last_best}'s ({changes[last_best][1]:.3f})."
    if all(abs(d) < STEADY for d in moves.values()):
        return (
            f" F1 of every matcher stays within {STEADY} between the first and the last "
            "month." + ending
        )
    most = max(moves, key=lambda lab: (abs(moves[lab]), lab))
    a, b = changes[most]
    direction = "falls" if b < a else "rises"
    steady = sorted(lab for lab, d in moves.items() if abs(d) < STEADY)
    held = f" Unchanged (within {STEADY}): {', '.join(steady)}." if steady else ""
    return (
        f" F1 of {most} {direction} most, from {a:.3f} in the first month to {b:.3f} in "
        f"the last.{held}{ending}"
    )
