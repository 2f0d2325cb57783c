"""What every figure draws alike: the figure itself, lens legends, axis and caption text."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.metrics.core import METRICS
from bench.report.records import Results
from bench.report.style import LENS_ORDER, LENS_STYLES

__all__ = [
    "figure_title",
    "legend",
    "lens_handles",
    "lens_tag",
    "metric_label",
    "new_figure",
    "overlap_sizes",
]


def new_figure(
    ncols: int = 1, *, width: float = 8.0, height: float = 5.0, **kw: Any
) -> tuple[Figure, Any]:
    """A figure of ``ncols`` panels side by side, laid out so nothing overlaps."""
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), layout="constrained", **kw)
    return fig, axes


def metric_label(key: str) -> str:
    """Human-readable name of a metric key (from :data:`bench.metrics.core.METRICS`)."""
    info = METRICS.get(key)
    return info.label if info is not None else key


def lens_tag(label: str, lens: str) -> str:
    """A matcher label with its lens's short tag: ``splink (prob)``."""
    return f"{label} ({LENS_STYLES[lens].short})"


def lens_handles(
    results: Results,
    labels: Iterable[str],
    lenses: Mapping[str, str],
    *,
    lines: bool = False,
    suffix: Mapping[str, str] | None = None,
) -> list[Line2D]:
    """Legend entries of ``labels``, by lens then label: colour, lens marker (and line).

    ``suffix`` replaces the text of some entries (default ``label (lens tag)``).
    """
    handles = []
    for lab in sorted(set(labels), key=lambda x: (LENS_ORDER.index(lenses[x]), x)):
        style = LENS_STYLES[lenses[lab]]
        handles.append(
            Line2D(
                [],
                [],
                color=results.colour(lab),
                marker=style.marker,
                linestyle=style.line if lines else "",
                markersize=7,
                label=(suffix or {}).get(lab, lens_tag(lab, lenses[lab])),
            )
        )
    return handles


def legend(
    fig: Figure, handles: list[Any], *, title: str = "matcher (lens)", below: bool = False
) -> None:
    """One legend for the figure, outside the axes so it never covers data.

    Single-panel figures put it on the right; multi-panel figures (``below``) put it
    under the panels in up to four columns, which keeps the panels wide.
    """
    if not handles:
        return
    if below:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(4, len(handles)),
            title=title,
            fontsize=9,
            title_fontsize=9,
        )
    else:
        fig.legend(
            handles=handles, loc="outside right upper", title=title, fontsize=9, title_fontsize=9
        )


def figure_title(title: str, rec: Mapping[str, Any]) -> str:
    """A per-dataset figure's heading: ``"Precision vs recall: cdp-realistic-small"``."""
    return f"{title}: {(rec.get('dataset') or {}).get('name')}"


def overlap_sizes(
    points: Sequence[tuple[float, float]], *, base: float = 55.0, step: float = 60.0
) -> list[float]:
    """Marker areas that keep coinciding points visible: earlier ones drawn larger.

    Points closer than 1% of the axes' span (x compared on a log scale when all x are
    positive and span more than a decade) form a group; within a group of n, the k-th
    point (in drawing order) gets ``base + step * (n - 1 - k)``, so each later, smaller
    marker sits inside the rings of the earlier ones.
    """
    if not points:
        return []
    xs = [p[0] for p in points]
    log_x = min(xs) > 0 and max(xs) / min(xs) > 10
    tx = [math.log10(x) for x in xs] if log_x else xs
    ys = [p[1] for p in points]
    span_x = (max(tx) - min(tx)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    groups: list[list[int]] = []
    for i in range(len(points)):
        for g in groups:
            j = g[0]
            if abs(tx[i] - tx[j]) <= 0.01 * span_x and abs(ys[i] - ys[j]) <= 0.01 * span_y:
                g.append(i)
                break
        else:
            groups.append([i])
    sizes = [base] * len(points)
    for g in groups:
        for k, i in enumerate(g):
            sizes[i] = base + step * (len(g) - 1 - k)
    return sizes
