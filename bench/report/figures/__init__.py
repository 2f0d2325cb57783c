"""Figures drawn from stored run records only (a pure function of ``results/<suite>/``).

Every figure is a function ``(Results) -> Drawing | Skip`` registered by name in
:data:`FIGURES` (one module each: :mod:`.pareto`, :mod:`.precision_recall`,
:mod:`.degradation`, :mod:`.hazards`, :mod:`.monthly`, :mod:`.scaling`). A figure whose
data is not in the records (no scaling runs, no ``hazards`` field, ...) returns a
:class:`Skip` saying what is missing and which kind of run produces it; nothing is drawn
and the report lists it under "not drawn".

Each drawn figure is saved by :mod:`.save` as ``<name>.png`` (150 dpi), ``<name>.svg``
and a sidecar ``<name>.json`` naming the runs behind it (run ids and keys), the caption,
and the colour of every matcher in it. Colours, markers and line styles come from
:mod:`bench.report.style`: a matcher has the same colour in every figure of a report,
and its marker and line show its lens.

Figures: ``pareto`` (B-cubed F1 vs records/s with the Pareto frontier),
``precision_recall`` (one point per run, threshold curves where stored), ``degradation``
(F1 vs the one recipe knob a sweep suite varies), ``hazards`` (false and missed merges
by hazard tag), ``monthly`` (precision, recall and F1 per month), ``scaling`` (match
time and records/s vs records, log-log, with fitted exponents).
"""

from __future__ import annotations

import matplotlib

# Headless: chosen before any figure module imports pyplot, so none opens a window.
matplotlib.use("Agg")

from bench.report.figures.drawing import (
    Drawing,
    FigureUnavailable,
    PlotError,
    Rendered,
    Skip,
)
from bench.report.figures.registry import FIGURES, PER_DATASET
from bench.report.figures.render import plot_one, render_all
from bench.report.figures.save import save_drawing

__all__ = [
    "FIGURES",
    "PER_DATASET",
    "Drawing",
    "FigureUnavailable",
    "PlotError",
    "Rendered",
    "Skip",
    "plot_one",
    "render_all",
    "save_drawing",
]
