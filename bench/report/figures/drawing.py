"""What a figure function returns: a :class:`Drawing`, or a :class:`Skip` saying why not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bench.report.records import Results

__all__ = ["Drawing", "FigureFunc", "FigureUnavailable", "PlotError", "Rendered", "Skip"]


class PlotError(ValueError):
    """A figure was asked for that does not exist, or there are no records to draw."""


class FigureUnavailable(PlotError):
    """The stored records lack the data a figure needs (the message says what runs add it)."""


@dataclass
class Drawing:
    """A drawn figure before it is saved.

    Parameters
    ----------
    fig
        The matplotlib figure.
    title
        Heading for the report.
    caption
        Plain-language description of what the figure shows and who wins where.
    runs
        The records behind the figure.
    labels
        Matcher labels drawn (their colours go into the sidecar).
    data
        Extra JSON-serialisable facts for the sidecar (e.g. fitted exponents).
    """

    fig: Figure
    title: str
    caption: str
    runs: list[dict[str, Any]]
    labels: list[str]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """A figure that cannot be drawn from these records.

    Parameters
    ----------
    title
        Heading the figure would have had.
    reason
        What the records lack.
    hint
        Which suite or command stores the missing data.
    """

    title: str
    reason: str
    hint: str


@dataclass(frozen=True)
class Rendered:
    """A figure saved to disk: its files by extension (``png``, ``svg``, ``json``)."""

    name: str
    title: str
    caption: str
    files: dict[str, Path]
    run_ids: list[str]


#: A figure: draws from the stored results, or says what they lack.
FigureFunc = Callable[[Results], Drawing | Skip]
