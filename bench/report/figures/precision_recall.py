"""Precision vs recall: a point per run, threshold curves where the run stored them."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from bench.report.figures.axes import (
    legend,
    lens_handles,
    metric_label,
    new_figure,
    others_sentence,
)
from bench.report.figures.drawing import Drawing, Skip
from bench.report.records import Results, dataset_key, dataset_title, person, series
from bench.report.style import LENS_STYLES

__all__ = ["fig_precision_recall"]

TITLE = "Precision vs recall"


def fig_precision_recall(results: Results) -> Drawing | Skip:
    """Pairwise precision vs recall: a point per run, threshold curves where stored."""
    usable = [
        r
        for r in results.ok()
        if person(r).get("precision") is not None and person(r).get("recall") is not None
    ]
    picked = results.on_primary_dataset(usable)
    if picked is None:
        return Skip(
            TITLE,
            "no successful run with pairwise precision and recall",
            "any suite: `idbench run SUITE`",
        )
    fp, runs = picked
    unplaced = sorted(
        {results.label(r) for r in results.ok() if dataset_key(r) == fp and r not in usable}
    )
    fig, ax = new_figure(width=8.5, height=6.0)
    _iso_f1_contours(ax)
    lenses = {results.label(r): results.lens(r) for r in runs}
    n_curves = sum(_draw_run(ax, results, r, lenses) for r in runs)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{metric_label('recall')} (share of true pairs found)")
    ax.set_ylabel(f"{metric_label('precision')} (share of predicted pairs that are true)")
    ax.set_title(f"{TITLE} on {dataset_title(runs[0])}", fontsize=11)
    ax.grid(True, alpha=0.3)
    handles = lens_handles(results, lenses, lenses, lines=n_curves > 0)
    if n_curves:
        handles.append(
            Line2D([], [], color="#444444", marker="o", mec="black", ls="", label="run's threshold")
        )
    legend(fig, handles)
    caption = _caption(results, runs, n_curves, unplaced) + others_sentence(results, fp)
    return Drawing(fig, TITLE, caption, runs, list(lenses), {"curves": n_curves})


def _iso_f1_contours(ax: Any) -> None:
    """Grey equal-F1 lines: where a point sits relative to them reads as its F1."""
    rr, pp = np.meshgrid(np.linspace(0.001, 1.02, 300), np.linspace(0.001, 1.02, 300))
    cs = ax.contour(
        rr,
        pp,
        2 * rr * pp / (rr + pp),
        levels=[0.2, 0.4, 0.6, 0.8, 0.9],
        colors="#bbbbbb",
        linewidths=0.7,
        zorder=1,
    )
    ax.clabel(cs, fmt="F1=%.1f", fontsize=7, colors="#999999")


def _draw_run(ax: Any, results: Results, rec: dict[str, Any], lenses: dict[str, str]) -> bool:
    """Draw a run's threshold curve (if stored) and its own point; True if it had a curve."""
    lab = results.label(rec)
    style = LENS_STYLES[lenses[lab]]
    pts = sorted(
        (
            c
            for c in series(rec, "curves") or ()
            if c.get("precision") is not None and c.get("recall") is not None
        ),
        key=lambda c: c.get("threshold", 0),
    )
    if pts:
        ax.plot(
            [c["recall"] for c in pts],
            [c["precision"] for c in pts],
            color=results.colour(lab),
            ls=style.line,
            lw=1.4,
            alpha=0.85,
            zorder=2,
        )
    m = person(rec)
    ax.scatter(
        m["recall"],
        m["precision"],
        color=results.colour(lab),
        marker=style.marker,
        s=60,
        zorder=3,
        edgecolors="black",
        linewidths=0.6,
    )
    return bool(pts)


def _caption(
    results: Results, runs: list[dict[str, Any]], n_curves: int, unplaced: list[str]
) -> str:
    best = max(runs, key=lambda r: person(r).get("f1") or 0.0)
    prec = max(runs, key=lambda r: (person(r)["precision"], person(r)["recall"]))
    rec_ = max(runs, key=lambda r: (person(r)["recall"], person(r)["precision"]))
    by_lens = [
        f"{lens.capitalize()} runs average precision "
        f"{statistics.fmean(person(r)['precision'] for r in of_lens):.3f} and recall "
        f"{statistics.fmean(person(r)['recall'] for r in of_lens):.3f}"
        for lens, of_lens in results.by_lens(runs).items()
    ]
    return (
        f"Each marker is one run on {dataset_title(runs[0])}: the share of predicted "
        f"same-person pairs that are true (up) against the share of true pairs found "
        f"(right); grey lines are equal-F1 contours. "
        + (
            f"Lines show {n_curves} run(s) with stored threshold sweeps: precision and recall "
            f"as the match threshold moves. "
            if n_curves
            else ""
        )
        + f"The best pairwise F1 is {person(best).get('f1') or 0:.3f} ({results.label(best)}); "
        f"the most precise is {results.label(prec)} ({person(prec)['precision']:.3f}), "
        f"the most complete {results.label(rec_)} (recall {person(rec_)['recall']:.3f}). "
        + (". ".join(by_lens) + "." if by_lens else "")
        + (
            f" Not shown: {', '.join(unplaced)} (no predicted pairs, so precision is undefined)."
            if unplaced
            else ""
        )
    )
