"""The figures of a report, by name: the one table ``idbench plot NAME`` looks names up in."""

from __future__ import annotations

from bench.report.figures.degradation import fig_degradation
from bench.report.figures.drawing import FigureFunc
from bench.report.figures.hazards import fig_hazards
from bench.report.figures.monthly import fig_monthly
from bench.report.figures.pareto import fig_pareto
from bench.report.figures.precision_recall import fig_precision_recall
from bench.report.figures.scaling import fig_scaling

__all__ = ["FIGURES", "PER_DATASET"]

#: Figure name -> function drawing it from :class:`~bench.report.records.Results`
#: (in report order).
FIGURES: dict[str, FigureFunc] = {
    "pareto": fig_pareto,
    "precision_recall": fig_precision_recall,
    "degradation": fig_degradation,
    "hazards": fig_hazards,
    "monthly": fig_monthly,
    "scaling": fig_scaling,
}

#: Figures that compare matchers on one dataset; a suite of several datasets gets one each.
PER_DATASET: tuple[str, ...] = ("pareto", "precision_recall", "hazards", "monthly")
