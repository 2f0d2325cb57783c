"""Evaluate one run's stored raw outputs against its dataset's truth.

Runs after the matcher has finished, in a connection of its own: the truth never shares
a connection with a matcher. Used by the run worker and by ``idbench run --recompute``,
so metrics can be re-derived from raw outputs after a metric fix.

The clusters are joined to the truth and the records once (``ev_base``, see
:mod:`bench.metrics.tables`); one contingency table for all truth levels feeds the
partition metrics of :mod:`bench.metrics.core` and every error-explaining metric: blocking,
stage attribution and threshold sweeps (:mod:`bench.metrics.pairs`), hazards
(:mod:`bench.metrics.hazards`), the two lenses (:mod:`bench.metrics.lenses`: the
anonymous task over the horizon and per observation window, pair classes, evidence
ceilings), business impact (:mod:`bench.metrics.business`) and months
(:mod:`bench.metrics.temporal`). Nothing is quadratic in cluster size: the cost is
O(records + candidate pairs).

A supervised run's training records (``training_records.parquet`` beside its outputs,
:mod:`bench.data.labels`) are left out of every metric; with ``heldout_seed`` any run is
also scored on the persons outside the training sample of that seed (``heldout``), so
all matchers of a suite with a supervised one compare on the same persons.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from bench.data.dataset import Dataset
from bench.data.labels import TRAINING_RECORDS_FILE, training_sample
from bench.metrics import core as metrics
from bench.metrics.business import DEFAULT_TOP_K, business_metrics
from bench.metrics.hazards import hazard_metrics
from bench.metrics.lenses import lens_metrics
from bench.metrics.pairs import (
    build_score_table,
    candidate_metrics,
    cost_thresholds,
    curve,
    threshold_summary,
)
from bench.metrics.tables import LEVELS, EvalTables, build_base, build_levels
from bench.metrics.temporal import monthly_metrics
from bench.metrics.windows import DEFAULT_WINDOW_DAYS
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["RECORD_KEYS", "evaluate_run", "partition_checksum"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Raw output files of a run.
CLUSTERS_FILE = "clusters.parquet"
PAIRS_FILE = "pairs.parquet"

#: Top-level run-record keys that :func:`evaluate_run` returns (and ``--recompute``
#: rewrites).
RECORD_KEYS: tuple[str, ...] = (
    "person",
    "household",
    "output",
    "candidates",
    "curves",
    "threshold_summary",
    "hazards",
    "anonymous",
    "anonymous_windows",
    "segments",
    "ceilings",
    "business",
    "monthly",
    "heldout",
    "evaluation_timings",
)


@contextlib.contextmanager
def _numpy_small_pages() -> Iterator[None]:
    """Keep numpy from asking the kernel for huge pages during an evaluation.

    numpy ``madvise``s large arrays for transparent huge pages; with the common Linux
    setting ``defrag = madvise`` such a fault may compact memory first. On a machine
    whose free memory was page cache, that turned the score table's few large
    temporaries (:mod:`bench.metrics.pairs`) from ~1 s into 1.5-2.6 s, mostly system
    time, at 10M pairs. Same effect as ``NUMPY_MADVISE_HUGEPAGE=0``, but scoped: the
    previous setting is restored afterwards.
    """
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    toggle = getattr(multiarray, "_set_madvise_hugepage", None)
    if toggle is None:
        yield
        return
    previous = toggle(False)
    try:
        yield
    finally:
        toggle(previous)


def partition_checksum(
    con: duckdb.DuckDBPyConnection, clusters: str, *, cluster_col: str = "cluster_id"
) -> str:
    """A checksum of the partition that ignores how clusters are labelled.

    Each record is paired with the smallest record id of its cluster; the hashes of
    those pairs are summed, so row order and cluster labels do not matter.
    ``cluster_col`` names the cluster column of ``clusters`` (``c`` in ``ev_base``).
    """
    table, col = engine.quote_ident(clusters), engine.quote_ident(cluster_col)
    # A GROUP BY joined back measured faster than min() OVER (PARTITION BY ...).
    row = engine.query_one(
        con,
        f"""
        SELECT CAST(sum(CAST(hash(k.record_id, r.rep) AS HUGEINT)) AS VARCHAR) AS chk
        FROM {table} AS k
        JOIN (SELECT {col} AS cl, min(record_id) AS rep FROM {table} GROUP BY {col}) AS r
          ON k.{col} IS NOT DISTINCT FROM r.cl
        """,
        step="partition checksum",
    )
    return str(row["chk"])


def _absent_from(table: str, column: str) -> str:
    """SQL condition: ``column`` is not a ``record_id`` of ``table`` (an anti-join)."""
    return f"NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.record_id = {column})"


def _register_outputs(
    con: duckdb.DuckDBPyConnection, raw_dir: Path, training: Path | None
) -> int | None:
    """Expose the raw outputs as ``clusters`` (and ``pairs``), without training records.

    A supervised run's training records (:mod:`bench.data.labels`) are left out of the
    clusters and every pair touching one is dropped, so the metrics describe only the
    persons the matcher did not learn from. Returns how many records were left out
    (``None`` for a run without a training sample).

    Raises
    ------
    EvaluationInputError
        The training file holds NULL, duplicate or unknown record ids, or every record.
    """
    files = {"clusters": raw_dir / CLUSTERS_FILE, "pairs": raw_dir / PAIRS_FILE}
    if training is None:
        for view, path in files.items():
            if path.is_file():
                engine.register_parquet(con, view, path)
        return None
    engine.register_parquet(con, "training_records", training, as_table=True)
    for view, path in files.items():
        if path.is_file():
            engine.register_parquet(con, f"{view}_all", path)
    check = engine.query_one(
        con,
        """
        SELECT count(*) AS n,
               count(*) - count(t.record_id) AS null_ids,
               count(DISTINCT t.record_id) AS distinct_ids,
               count(t.record_id) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM clusters_all AS k WHERE k.record_id = t.record_id
               )) AS unknown,
               (SELECT count(*) FROM clusters_all) AS n_clusters
        FROM training_records AS t
        """,
        step="evaluation: check training records",
    )
    n = int(check["n"])
    problems = []
    if check["null_ids"]:
        problems.append(f"{check['null_ids']} NULL record_id(s)")
    if int(check["distinct_ids"]) != n - int(check["null_ids"]):
        problems.append("duplicate record_id(s)")
    if check["unknown"]:
        problems.append(f"{check['unknown']} record_id(s) absent from the clusters")
    if problems:
        msg = f"{training}: {', '.join(problems)}; it must list training records of this run"
        raise metrics.EvaluationInputError(msg)
    if n == int(check["n_clusters"]) and n > 0:
        msg = (
            f"{training}: every record of the run is a training record, so nothing is left "
            "to evaluate (the dataset has too few persons for a training sample)"
        )
        raise metrics.EvaluationInputError(msg)
    keep = {
        "clusters": _absent_from("training_records", "x.record_id"),
        "pairs": _absent_from("training_records", "x.record_id_l")
        + " AND "
        + _absent_from("training_records", "x.record_id_r"),
    }
    for view, path in files.items():
        if path.is_file():
            engine.execute(
                con,
                f"CREATE VIEW {view} AS SELECT * FROM {view}_all AS x WHERE {keep[view]}",
                step=f"evaluation: {view} without training records",
            )
    return n


def _heldout(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    seed: int,
    core: dict[str, dict[str, Any]],
    n_training: int | None,
    *,
    has_household: bool,
) -> dict[str, Any]:
    """Partition metrics on the persons outside the training sample of ``seed``.

    A supervised run is already scored on exactly those (its ``person`` / ``household``
    are reused); any other run is restricted here to the same records.
    """
    if n_training is not None:
        return {
            "seed": seed,
            "training_records": n_training,
            "person": core["person"],
            "household": core.get("household"),
        }
    sample = training_sample(dataset.truth_path, seed=seed)
    engine.register_arrow(con, "heldout_training", sample.select(["record_id"]))
    engine.execute(
        con,
        "CREATE VIEW clusters_heldout AS SELECT * FROM clusters AS x WHERE "
        + _absent_from("heldout_training", "x.record_id"),
        step="evaluation: held-out clusters",
    )
    return {
        "seed": seed,
        "training_records": sample.num_rows,
        "person": metrics.evaluate(con, "clusters_heldout", "truth", entity="person_id"),
        "household": metrics.evaluate(
            con, "clusters_heldout", "household_truth", entity="household_id"
        )
        if has_household
        else None,
    }


def _check_clusters(con: duckdb.DuckDBPyConnection) -> None:
    have = {c.lower() for c in engine.table_columns(con, "clusters")}
    missing = [c for c in ("record_id", "cluster_id") if c not in have]
    if missing:
        msg = f"clusters lack column(s) {', '.join(missing)}; they have {', '.join(sorted(have))}"
        raise metrics.EvaluationInputError(msg)


class _StepTimer:
    """Runs the evaluation's steps and keeps how long each took (``evaluation_timings``)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        value = fn()
        self.timings[name] = time.perf_counter() - t0
        log.debug("evaluation step %s: %.3f s", name, self.timings[name])
        return value


def _register_household_truth(con: duckdb.DuckDBPyConnection) -> bool:
    """Expose ``household_truth`` when the truth knows households; return whether it does."""
    has_household = bool(
        "household_id" in engine.table_columns(con, "truth")
        and engine.query_one(
            con,
            "SELECT count(household_id) AS n FROM truth",
            step="household truth",
        )["n"]
    )
    if has_household:
        # A record without a known household is its own household (as in ev_base);
        # the view only serves to explain invalid input.
        engine.execute(
            con,
            "CREATE VIEW household_truth AS SELECT record_id, "
            "coalesce(household_id, -1 - record_id) AS household_id FROM truth",
            step="household truth",
        )
    return has_household


def _register_inputs(
    con: duckdb.DuckDBPyConnection, raw_dir: Path, dataset: Dataset
) -> tuple[int | None, bool]:
    """Expose the run's outputs, the truth and the records to ``con``.

    Returns the number of training records left out (see :func:`_register_outputs`) and
    whether the truth knows households.
    """
    training = raw_dir / TRAINING_RECORDS_FILE
    n_training = _register_outputs(con, raw_dir, training if training.is_file() else None)
    engine.register_parquet(con, "truth", dataset.truth_path)
    engine.register_parquet(con, "records", dataset.records_path)
    _check_clusters(con)
    return n_training, _register_household_truth(con)


def _partition_metrics(
    con: duckdb.DuckDBPyConnection, tables: EvalTables, timed: _StepTimer
) -> dict[str, dict[str, Any]]:
    """Level -> partition metrics (:data:`bench.metrics.core.METRICS`)."""
    core: dict[str, dict[str, Any]] = {}
    for level in tables.levels:
        core[level] = timed(
            f"partition_{level}",
            lambda lv=level: metrics.evaluate_grouped(
                con,
                tables.grouped(lv),
                clusters="clusters",
                truth="truth" if lv == "person" else "household_truth",
                entity=LEVELS[lv],
                cells=tables.cells(lv),
            ),
        )
    return core


def _pair_metrics(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
    core: dict[str, dict[str, Any]],
    *,
    threshold: float | None,
    timed: _StepTimer,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pair metrics of the run's scored pairs (view ``pairs``).

    Returns ``candidates``, ``curves`` and ``threshold_summary`` as record blocks, and
    the cost thresholds that :func:`bench.metrics.business.business_metrics` reports.
    """
    true_pairs = {lv: core[lv]["true_pairs"] for lv in tables.levels}
    scores = timed("score_histogram", lambda: build_score_table(con, "pairs", tables))
    blocks = {
        "candidates": timed(
            "candidates", lambda: candidate_metrics(scores, core, threshold=threshold)
        ),
        "curves": timed("curves", lambda: curve(scores, true_pairs)),
        "threshold_summary": timed(
            "threshold_summary", lambda: threshold_summary(scores, true_pairs)
        ),
    }
    cost = timed("cost_thresholds", lambda: cost_thresholds(scores, true_pairs))
    return blocks, cost


def _error_metrics(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    tables: EvalTables,
    core: dict[str, dict[str, Any]],
    *,
    top_k: int,
    cost: dict[str, Any] | None,
    timed: _StepTimer,
) -> dict[str, Any]:
    """``hazards``, ``business`` and ``monthly``."""
    result: dict[str, Any] = {"hazards": None}
    hazards = dataset.truth_tables.get("hazards")
    if hazards is not None:
        engine.register_parquet(con, "hazards", hazards)
        result["hazards"] = timed("hazards", lambda: hazard_metrics(con, tables, "hazards", core))
    result["business"] = timed(
        "business",
        lambda: business_metrics(con, tables, core, top_k=top_k, cost=cost),
    )
    result["monthly"] = timed("monthly", lambda: monthly_metrics(con, tables))
    return result


@_numpy_small_pages()
def evaluate_run(
    raw_dir: str | Path,
    dataset: Dataset,
    *,
    threads: int = 2,
    threshold: float | None = None,
    top_k: int = DEFAULT_TOP_K,
    heldout_seed: int | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> dict[str, Any]:
    """All metrics of the run whose raw outputs are in ``raw_dir``.

    Parameters
    ----------
    raw_dir
        Directory with ``clusters.parquet`` and, for matchers that emit pairs,
        ``pairs.parquet``; for a supervised run also ``training_records.parquet``,
        whose records are left out of every metric (:mod:`bench.data.labels`).
    dataset
        The dataset the run resolved (its truth, records and optional
        ``truth/hazards.parquet`` are read here).
    threads
        DuckDB threads.
    threshold
        The matcher's pair-acceptance threshold (its ``threshold`` parameter), for the
        stage attribution of ``candidates``; ``None`` leaves that stage out.
    top_k
        How many high-value customers ``business`` looks for.
    heldout_seed
        When set, ``heldout`` holds the partition metrics on the persons a supervised
        run with this seed would be scored on (those outside
        :func:`bench.data.labels.training_sample`), so every matcher of a suite with a
        supervised one can be compared on the same persons. ``None``: ``heldout`` is
        ``None``.
    window_days
        Length of the observation windows of ``anonymous_windows``
        (:mod:`bench.metrics.windows`).

    Returns
    -------
    dict
        The keys of :data:`RECORD_KEYS`. ``person`` / ``household``: partition metrics
        (:data:`bench.metrics.core.METRICS`; household ``None`` without household truth).
        ``output``: record and cluster counts, checksum, pair count, and
        ``training_records`` (records left out as a supervised run's training sample;
        ``None`` for other runs); for a supervised run every count, the checksum and
        every metric cover the evaluated records only. ``heldout``: ``{"seed",
        "training_records", "person", "household"}`` (see ``heldout_seed``) or
        ``None``. ``candidates``, ``threshold_summary``, ``anonymous``, ``business``:
        level (``"person"``, ``"household"``) -> block; so are ``segments`` (pair metrics
        per pair class). ``anonymous_windows``: the anonymous task per observation window
        (person truth). ``ceilings``: the dataset's evidence ceilings (cached in its
        ``truth/``). ``curves``, ``hazards``, ``monthly``: lists of flat
        rows, each with a ``level``. A key is ``None`` where it does not apply (no pairs,
        no hazard table, no anonymous records, no timestamps). ``evaluation_timings``:
        seconds per step. Definitions are in each metric module's docstring.
    """
    raw_dir = Path(raw_dir)
    timed = _StepTimer()
    con = engine.connect(threads=threads)
    try:
        n_training, has_household = _register_inputs(con, raw_dir, dataset)
        tables = timed(
            "base",
            lambda: build_base(
                con,
                clusters="clusters",
                truth="truth",
                records="records",
                has_household=has_household,
            ),
        )
        timed("contingency", lambda: build_levels(con, tables))
        core = _partition_metrics(con, tables, timed)
        result: dict[str, Any] = {"person": core["person"], "household": core.get("household")}

        # evaluate_grouped has rejected NULL cluster ids, so its counts are those of the
        # evaluated clusters (records, distinct cluster ids; a supervised run's training
        # records left out).
        out: dict[str, Any] = {
            "n_records": core["person"]["n_records"],
            "n_clusters": core["person"]["n_clusters"],
            "training_records": n_training,
        }
        out["checksum"] = timed(
            "checksum", lambda: partition_checksum(con, tables.base, cluster_col="c")
        )
        result["output"] = out

        cost = None
        result.update(candidates=None, curves=None, threshold_summary=None)
        if (raw_dir / PAIRS_FILE).is_file():
            out["n_pairs"] = engine.query_one(
                con, "SELECT count(*) AS n FROM pairs", step="pairs summary"
            )["n"]
            blocks, cost = _pair_metrics(con, tables, core, threshold=threshold, timed=timed)
            result.update(blocks)
        result.update(
            _error_metrics(con, dataset, tables, core, top_k=top_k, cost=cost, timed=timed)
        )
        result.update(lens_metrics(con, dataset, tables, window_days=window_days, timed=timed))
        result["heldout"] = None
        if heldout_seed is not None:
            result["heldout"] = timed(
                "heldout",
                lambda: _heldout(
                    con, dataset, heldout_seed, core, n_training, has_household=has_household
                ),
            )
        result["evaluation_timings"] = timed.timings
        return result
    finally:
        con.close()
