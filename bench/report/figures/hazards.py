"""Errors by hazard: false and missed merges per planted hazard tag, bars per matcher."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.report.figures.axes import figure_title, legend, lens_tag, new_figure
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, dataset_title, series
from bench.report.style import LENS_ORDER, LENS_STYLES

__all__ = ["fig_hazards"]

TITLE = "Errors by hazard"

#: The two error kinds: the figure's key -> the record pairs counted in the stored rows.
_HAZARD_PAIRS = {"false_merges": "false_merge_pairs", "missed_merges": "missed_merge_pairs"}

#: Mean error count per matcher label, hazard and error kind.
Means = dict[str, dict[str, dict[str, float]]]


def fig_hazards(results: Results) -> Drawing | Skip:
    """False and missed merges by hazard tag, grouped bars per matcher."""
    usable = [r for r in results.ok() if series(r, "hazards")]
    picked = results.on_primary_dataset(usable)
    if picked is None:
        return Skip(
            TITLE,
            "no run record carries per-hazard error counts (`hazards`)",
            "runs evaluated with per-hazard attribution on a generated dataset (tagged "
            "hazards); `idbench run --recompute` adds them to stored runs",
        )
    _, runs = picked
    mean = _mean_errors(results, runs)
    hazards = sorted(
        {hz for per in mean.values() for hz in per},
        key=lambda hz: (
            -sum(per.get(hz, {}).get(k, 0) for per in mean.values() for k in _HAZARD_PAIRS),
            hz,
        ),
    )
    first_lens = {}
    for r in runs:
        first_lens.setdefault(results.label(r), results.lens(r))
    labels = sorted(mean, key=lambda lab: (LENS_ORDER.index(first_lens[lab]), lab))
    lenses = {lab: first_lens[lab] for lab in labels}
    title = figure_title(TITLE, runs[0])
    fig = _draw(results, mean, hazards, lenses, title)
    compared = [lab for lab in labels if lenses[lab] != "baseline"] or labels
    caption = _caption(mean, hazards, compared, dataset_title(runs[0]))
    return Drawing(fig, title, caption, runs, labels, {"hazards": hazards})


def _mean_errors(results: Results, runs: list[dict[str, Any]]) -> Means:
    """Mean false and missed merges per matcher label and hazard over the runs."""
    counts: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: {k: [] for k in _HAZARD_PAIRS})
    )
    for r in runs:
        for h in series(r, "hazards"):
            if h.get("hazard") == "(all)":
                continue  # the total row would dwarf every tag
            for k, pairs in _HAZARD_PAIRS.items():
                # record pairs involving a tagged record (bench.metrics.hazards)
                value = h.get(pairs, h.get(k))
                counts[results.label(r)][str(h.get("hazard"))][k].append(float(value or 0))
    return {
        lab: {
            hz: {k: statistics.fmean(v) if v else 0.0 for k, v in d.items()}
            for hz, d in per.items()
        }
        for lab, per in counts.items()
    }


def _draw(
    results: Results, mean: Means, hazards: list[str], lenses: dict[str, str], title: str
) -> Figure:
    labels = list(lenses)
    height = max(4.0, 0.45 * len(hazards) * max(1, len(labels)) ** 0.5 + 2.2)
    fig, axes = new_figure(2, width=11.0, height=min(height, 12.0), sharey=True)
    y = np.arange(len(hazards))
    bar = 0.8 / max(1, len(labels))
    for ax, key, name in zip(
        axes, ("false_merges", "missed_merges"), ("false merges", "missed merges"), strict=True
    ):
        for i, lab in enumerate(labels):
            vals = [mean[lab].get(hz, {}).get(key, 0.0) for hz in hazards]
            ax.barh(
                y - 0.4 + bar * (i + 0.5),
                vals,
                height=bar,
                color=results.colour(lab),
                hatch=LENS_STYLES[lenses[lab]].hatch,
                edgecolor="white",
                linewidth=0.4,
            )
        ax.set_yticks(y, hazards)
        # counts span orders of magnitude (cookie churn vs a handful of typos)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel(f"{name} (record pairs involving a tagged record; log scale)")
        ax.set_title(
            "false merges: different persons put together"
            if key == "false_merges"
            else "missed merges: one person left split",
            fontsize=10,
        )
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the axes share y: inverting once puts the worst hazard on top
    fig.suptitle(title, fontsize=11)
    handles = [
        Patch(
            facecolor=results.colour(lab),
            hatch=LENS_STYLES[lens].hatch,
            edgecolor="white",
            label=lens_tag(lab, lens),
        )
        for lab, lens in lenses.items()
    ]
    legend(fig, handles, title="matcher (hatched: probabilistic)", below=True)
    return fig


def _caption(mean: Means, hazards: list[str], labels: list[str], dataset: str) -> str:
    """What the bars show; which hazard leads each error kind over ``labels`` (no baselines)."""

    def total(lab: str, key: str) -> float:
        return sum(v[key] for v in mean[lab].values())

    def worst(key: str) -> tuple[str, float]:
        sums = {hz: sum(mean[lab].get(hz, {}).get(key, 0) for lab in labels) for hz in hazards}
        hz = max(hazards, key=lambda h: (sums[h], h))
        return hz, sums[hz]

    text = (
        f"Errors of each matcher on {dataset} attributed to the hazard planted in the "
        f"data (left: records wrongly merged with another person; right: records of one "
        f"person left apart; a pair counts under every tag its records carry). Summed "
        f"over the {len(labels)} matcher(s) compared (baselines aside): "
    )
    (worst_fm, n_fm), (worst_mm, n_mm) = worst("false_merges"), worst("missed_merges")
    if n_fm > 0:
        fm_lab = max(labels, key=lambda lab: mean[lab].get(worst_fm, {}).get("false_merges", 0))
        text += f"most false merges involve {worst_fm} (mostly {fm_lab}); "
    else:
        text += "no false merge involves a tagged record; "
    text += (
        f"most missed merges involve {worst_mm}. "
        if n_mm > 0
        else "no missed merge involves a tagged record. "
    )
    fewest_fm = min(labels, key=lambda lab: (total(lab, "false_merges"), lab))
    fewest_mm = min(labels, key=lambda lab: (total(lab, "missed_merges"), lab))
    return text + (
        f"Fewest false merges: {fewest_fm} ({total(fewest_fm, 'false_merges'):,.0f}); "
        f"fewest missed merges: {fewest_mm} ({total(fewest_mm, 'missed_merges'):,.0f})."
    )
