"""Precision vs recall: a point per run, threshold curves where the run stored them."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
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
from bench.report.records import Results, dataset_key, dataset_title, person, series
from bench.report.style import LENS_STYLES
from bench.report.verdict import contenders

__all__ = ["fig_precision_recall", "threshold_point"]

TITLE = "Precision vs recall"

#: A final point farther than this (in recall or precision) from the run's point on its
#: curve gets an arrow from the one to the other.
_OFF_CURVE = 0.01


def fig_precision_recall(results: Results) -> Drawing | Skip:
    """Pairwise precision vs recall: a point per run, threshold curves where stored.

    A stored curve is over the scored candidate pairs before clustering; the run's filled
    marker is over its final clusters (after transitive closure). Where the two differ,
    a hollow marker on the curve shows the run's own threshold and an arrow joins it to
    the filled marker.
    """
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
    title = figure_title(TITLE, runs[0])
    fig, ax = new_figure(width=8.5, height=6.0)
    _iso_f1_contours(ax)
    lenses = {results.label(r): results.lens(r) for r in runs}
    finals = [(person(r)["recall"], person(r)["precision"]) for r in runs]
    sizes = overlap_sizes(finals)
    moved: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
    n_curves = 0
    for r, size in zip(runs, sizes, strict=True):
        has_curve, shift = _draw_run(ax, results, r, lenses, size)
        n_curves += has_curve
        if shift is not None:
            moved[results.label(r)] = shift
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{metric_label('recall')} (share of true pairs found)")
    ax.set_ylabel(f"{metric_label('precision')} (share of predicted pairs that are true)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    legend(fig, _handles(results, lenses, n_curves, bool(moved)))
    caption = _caption(results, runs, n_curves, unplaced) + _moved_sentence(moved)
    data = {"curves": n_curves, "threshold_points": {k: v[0] for k, v in moved.items()}}
    return Drawing(fig, title, caption, runs, list(lenses), data)


def _handles(results: Results, lenses: dict[str, str], n_curves: int, moved: bool) -> list[Line2D]:
    handles = lens_handles(results, lenses, lenses, lines=n_curves > 0)
    handles.append(
        Line2D([], [], color="#444444", marker="o", mec="black", ls="", label="run: final clusters")
    )
    if n_curves:
        handles.append(
            Line2D([], [], color="#444444", ls="-", label="curve: scored pairs by threshold")
        )
    if moved:
        handles.append(
            Line2D(
                [],
                [],
                color="#444444",
                marker="o",
                mfc="white",
                ls="",
                label="hollow: scored pairs at the run's threshold",
            )
        )
    return handles


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


def _curve(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's stored threshold sweep (person level), by threshold."""
    return sorted(
        (
            c
            for c in series(rec, "curves") or ()
            if c.get("precision") is not None and c.get("recall") is not None
        ),
        key=lambda c: c.get("threshold", 0),
    )


def threshold_point(rec: dict[str, Any]) -> tuple[float, float] | None:
    """(recall, precision) of the run's scored pairs at its own threshold, before clustering.

    Read from the stage attribution (``candidates.person.stages``, stage ``threshold``)
    when stored, else the curve's point at the lowest stored threshold at or above the
    run's; None when neither is known.
    """
    stages = ((rec.get("candidates") or {}).get("person") or {}).get("stages") or []
    for st in stages:
        if st.get("stage") == "threshold" and None not in (st.get("recall"), st.get("precision")):
            return float(st["recall"]), float(st["precision"])
    thr = (rec.get("matcher") or {}).get("threshold")
    above = [c for c in _curve(rec) if thr is not None and c.get("threshold", 0) >= thr]
    if not above:
        return None
    return float(above[0]["recall"]), float(above[0]["precision"])


def _draw_run(
    ax: Any, results: Results, rec: dict[str, Any], lenses: dict[str, str], size: float
) -> tuple[bool, tuple[tuple[float, float], tuple[float, float]] | None]:
    """Draw a run's curve (if stored), its threshold point and its final point.

    Returns whether it had a curve, and (threshold point, final point) when they differ.
    """
    lab = results.label(rec)
    style = LENS_STYLES[lenses[lab]]
    colour = results.colour(lab)
    pts = _curve(rec)
    if pts:
        ax.plot(
            [c["recall"] for c in pts],
            [c["precision"] for c in pts],
            color=colour,
            ls=style.line,
            lw=1.4,
            alpha=0.85,
            zorder=2,
        )
    final = (person(rec)["recall"], person(rec)["precision"])
    ax.scatter(
        *final,
        color=colour,
        marker=style.marker,
        s=size,
        zorder=4,
        edgecolors="black",
        linewidths=0.6,
    )
    at = threshold_point(rec) if pts else None
    if at is None or max(abs(at[0] - final[0]), abs(at[1] - final[1])) <= _OFF_CURVE:
        return bool(pts), None
    ax.scatter(*at, facecolors="white", edgecolors=colour, marker=style.marker, s=45, zorder=3)
    ax.annotate(
        "",
        xy=final,
        xytext=at,
        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.0, "alpha": 0.8},
        zorder=3,
    )
    return True, (at, final)


def _moved_sentence(moved: dict[str, tuple[tuple[float, float], tuple[float, float]]]) -> str:
    """Say, per run, how far its clusters moved from its threshold point on the curve."""
    if not moved:
        return ""
    parts = [
        f"{lab} from recall {at[0]:.3f} / precision {at[1]:.3f} at its threshold to "
        f"{final[0]:.3f} / {final[1]:.3f} after clustering"
        for lab, (at, final) in sorted(moved.items())
    ]
    return (
        " A curve covers the scored candidate pairs only, before clustering; transitive "
        "closure (and a hybrid's rule merges) then links records whose pair was never "
        "scored or was below the threshold, so a run's final point "
        "can lie off its curve. The arrow joins the hollow marker (the run's threshold on "
        "its curve) to the filled one: " + "; ".join(parts) + "."
    )


def _caption(
    results: Results, runs: list[dict[str, Any]], n_curves: int, unplaced: list[str]
) -> str:
    fair = contenders(runs) or runs
    best = max(fair, key=lambda r: person(r).get("f1") or 0.0)
    prec = max(fair, key=lambda r: (person(r)["precision"], person(r)["recall"]))
    rec_ = max(fair, key=lambda r: (person(r)["recall"], person(r)["precision"]))
    who = "Among runs that are neither baselines nor over-merging, t" if fair is not runs else "T"
    by_lens = [
        f"{lens.capitalize()} runs average precision "
        f"{statistics.fmean(person(r)['precision'] for r in of_lens):.3f} and recall "
        f"{statistics.fmean(person(r)['recall'] for r in of_lens):.3f}"
        for lens, of_lens in results.by_lens(runs).items()
    ]
    return (
        f"Each filled marker is one run on {dataset_title(runs[0])}: the share of "
        f"predicted same-person pairs that are true (up) against the share of true pairs "
        f"found (right), over its final clusters; grey lines are equal-F1 contours; "
        f"markers of runs at the same point are drawn in decreasing sizes. "
        + (
            f"Lines show {n_curves} run(s) with stored threshold sweeps: precision and recall "
            f"of the scored pairs as the match threshold moves. "
            if n_curves
            else ""
        )
        + f"{who}he best pairwise F1 is {person(best).get('f1') or 0:.3f} "
        f"({results.label(best)}); the most precise is {results.label(prec)} "
        f"({person(prec)['precision']:.3f}), the most complete {results.label(rec_)} (recall "
        f"{person(rec_)['recall']:.3f}). "
        + (". ".join(by_lens) + "." if by_lens else "")
        + (
            f" Not shown: {', '.join(unplaced)} (no predicted pairs, so precision is undefined)."
            if unplaced
            else ""
        )
    )
