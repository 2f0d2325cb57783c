"""How matchers look in a report: short labels, stable colours, and a style per lens.

A matcher configuration is labelled by its name plus the parameters that vary between
its configurations (:func:`short_labels`, through :func:`matcher_label`): the console,
the report, the figures and their JSON sidecars all show that one label. Colours are stable: the labels of all matchers of a suite are
sorted and mapped to a fixed palette (:func:`colour_map`), so a matcher has the same
colour in every figure of a report. Markers, line styles and bar hatches show the lens
(:data:`LENS_STYLES`): squares and dotted lines for baselines, circles and solid lines
for deterministic matchers, triangles and dashed lines for probabilistic ones, diamonds
and dash-dot lines for hybrids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.api import LENSES

__all__ = [
    "LENS_ORDER",
    "LENS_STYLES",
    "PALETTE",
    "UNSPECIFIED",
    "LensStyle",
    "colour_map",
]

#: tab10 followed by ten further distinct colours; labels beyond 20 cycle.
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
    "#8ca252",
    "#e7ba52",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
)

#: The lens of a matcher that declared none (or one not in :data:`bench.api.LENSES`).
UNSPECIFIED = "unspecified"

#: Lenses in the order legends, captions and tables list them.
LENS_ORDER: tuple[str, ...] = (*LENSES, UNSPECIFIED)


@dataclass(frozen=True)
class LensStyle:
    """How the matchers of one lens are drawn and tagged.

    Parameters
    ----------
    marker
        Matplotlib marker of their points.
    line
        Matplotlib line style of their lines.
    hatch
        Hatch of their bars (``None``: solid).
    short
        Tag in tables and legends (``det``, ``prob``...).
    """

    marker: str
    line: str | tuple[int, tuple[int, ...]]
    hatch: str | None
    short: str


LENS_STYLES: dict[str, LensStyle] = {
    "baseline": LensStyle("s", ":", "..", "baseline"),
    "deterministic": LensStyle("o", "-", None, "det"),
    "probabilistic": LensStyle("^", "--", "//", "prob"),
    "hybrid": LensStyle("D", "-.", "//", "hybrid"),
    UNSPECIFIED: LensStyle("X", (0, (3, 1, 1, 1, 1, 1)), "xx", UNSPECIFIED),
}


def colour_map(labels: Iterable[str]) -> dict[str, str]:
    """A palette colour per label: the sorted distinct labels take the palette in order."""
    ordered = sorted(set(labels))
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(ordered)}
