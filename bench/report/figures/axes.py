"""What every figure draws alike: the figure itself, lens legends, axis and caption text."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.metrics.core import METRICS
from bench.report.records import Results, dataset_key
from bench.report.style import LENS_ORDER, LENS_STYLES

__all__ = [
    "legend",
    "lens_handles",
    "lens_tag",
    "metric_label",
    "new_figure",
    "others_sentence",
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


def others_sentence(results: Results, shown: str) -> str:
    """' ... the N other dataset(s) are in the results table.' when there are any."""
    others = {dataset_key(r) for r in results.ok()} - {shown}
    if not others:
        return ""
    return (
        f" The figure shows the dataset with the most runs; the {len(others)} other "
        f"dataset(s) are in the results table."
    )
