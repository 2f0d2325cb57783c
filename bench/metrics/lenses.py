"""The run-record blocks about the two lenses (first-party and anonymous records).

Gathers, for :func:`bench.metrics.evaluate.evaluate_run`, the anonymous task over the
whole horizon (:mod:`bench.metrics.anonymous`) and per observation window
(:mod:`bench.metrics.windows`), the pair metrics per pair class
(:mod:`bench.metrics.segments`) and the dataset's evidence ceilings
(:mod:`bench.metrics.ceilings`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bench.data.dataset import Dataset
from bench.metrics.anonymous import anonymous_metrics
from bench.metrics.ceilings import evidence_ceilings
from bench.metrics.segments import segment_metrics
from bench.metrics.tables import EvalTables
from bench.metrics.windows import window_metrics

if TYPE_CHECKING:
    import duckdb

__all__ = ["LENS_KEYS", "lens_metrics"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The run-record keys :func:`lens_metrics` returns.
LENS_KEYS: tuple[str, ...] = ("anonymous", "anonymous_windows", "segments", "ceilings")


def lens_metrics(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    tables: EvalTables,
    *,
    window_days: int,
    timed: Callable[[str, Callable[[], Any]], Any],
) -> dict[str, Any]:
    """``anonymous``, ``anonymous_windows``, ``segments`` and ``ceilings`` of a run.

    Parameters
    ----------
    con
        Evaluation connection with the contingency tables of ``tables``.
    dataset
        The dataset (its ``identifier_ip`` evidence for windows and ceilings).
    tables
        What :func:`bench.metrics.tables.build_base` built.
    window_days
        Observation window length (:func:`bench.metrics.windows.window_metrics`).
    timed
        Runs a named step and records its time.

    Returns
    -------
    dict
        The keys of :data:`LENS_KEYS`, each ``None`` where it does not apply.
    """
    identifier_ip = dataset.tables.get("identifier_ip")
    return {
        "anonymous": timed("anonymous", lambda: anonymous_metrics(con, tables)),
        "anonymous_windows": timed(
            "anonymous_windows",
            lambda: window_metrics(
                con, tables, identifier_ip=identifier_ip, window_days=window_days
            ),
        ),
        "segments": timed("segments", lambda: segment_metrics(con, tables)),
        "ceilings": timed(
            "ceilings",
            lambda: evidence_ceilings(con, dataset) if tables.n_anonymous else None,
        ),
    }
