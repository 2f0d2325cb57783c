"""Scored-pair metrics: blocking, stage attribution and threshold sweeps.

For matchers that emit candidate pairs (``record_id_l, record_id_r, score``). The pairs
are joined to the truth once, sorted by score in numpy and reduced to a
:class:`ScoreTable`: for each distinct score ``s`` (in descending order) the number of
pairs scored ``>= s`` and how many of them are true at each level. Every quantity below
is a lookup or a vectorised scan of that table, so the cost is one join and one sort of
the candidate scores; no pair outside the candidates is ever formed. (Until the
evaluation-speed work the table was a SQL window over ``ev_score_cum``; the numbers are
the same, bit for bit: the selections use the same double expressions.)

Definitions (``T`` = all true pairs of the level, from the partition metrics, including
pairs the matcher never generated; ``N`` = records):

- ``candidate_pairs``: pairs emitted; ``true_candidate_pairs``: those within one entity.
- ``pair_completeness = true_candidate_pairs / T`` (the recall ceiling set by blocking).
- ``reduction_ratio = 1 - candidate_pairs / (N (N - 1) / 2)``.
- A pair is *accepted* at threshold ``t`` when ``score >= t`` (the convention of the
  built-in matchers and Splink's ``threshold_match_probability``).
- Stages (each with pairs, tp, fp, fn, precision, recall, F1 against ``T``):
  ``candidates`` (all emitted pairs), ``threshold`` (accepted pairs at the matcher's
  threshold), ``clusters`` (pairs within the final clusters: the transitive closure).
  ``recall_lost_at_candidates = (T - tp_candidates) / T``;
  ``recall_lost_at_threshold = (tp_candidates - tp_threshold) / T``;
  ``recall_gained_at_clustering = (tp_clusters - tp_threshold) / T`` (negative when the
  clustering splits accepted pairs); ``precision_lost_at_clustering =
  precision_threshold - precision_clusters``. Hence ``recall_clusters = 1 -
  lost_at_candidates - lost_at_threshold + gained_at_clustering``.
- The precision-recall curve: one point per threshold taken from the distinct scores at
  (about) every ``1/n_points`` quantile of the pairs, plus the highest and the lowest
  score; precision = accepted true / accepted, recall = accepted true / ``T``.
- Threshold summary, exact over *every* distinct score (not only the curve's points):
  best-F1 and best-F0.5 thresholds (ties: the higher threshold), and for each recall
  level the highest threshold whose recall reaches it with its precision (``None`` when
  unreachable, e.g. above the pair completeness). Cost-weighted choices: the threshold
  minimising ``C * fp + fn`` (ties: the higher threshold). Only thresholds accepting at
  least one pair are candidates; all of these are pair-level decisions, before
  clustering.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.metrics.core import f_beta, ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = [
    "COST_RATIOS",
    "RECALL_LEVELS",
    "ScoreTable",
    "build_score_table",
    "candidate_metrics",
    "cost_thresholds",
    "curve",
    "threshold_summary",
]

log = logging.getLogger(__name__)

#: Recall levels at which the threshold summary reports precision.
RECALL_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
#: Cost of a false merge in units of a missed merge.
COST_RATIOS: tuple[float, ...] = (1, 5, 10)


@dataclass(frozen=True)
class ScoreTable:
    """Per distinct score (descending), cumulative pair and true-pair counts.

    Attributes
    ----------
    levels
        Truth levels with a ``tp`` array.
    score
        Distinct scores as doubles, descending (NaN, if any, first: DuckDB's order).
    n
        Pairs with exactly this score.
    pairs
        Pairs scored ``>= score``.
    tp
        Level -> pairs scored ``>= score`` within one entity of the level.
    """

    levels: tuple[str, ...]
    score: np.ndarray
    n: np.ndarray
    pairs: np.ndarray
    tp: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.score)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a dict: ``score``, ``n``, ``pairs``, ``tp_<level>``."""
        out: dict[str, Any] = {
            "score": float(self.score[i]),
            "n": int(self.n[i]),
            "pairs": int(self.pairs[i]),
        }
        return out | {_tp(lv): int(a[i]) for lv, a in self.tp.items()}

    def empty_row(self) -> dict[str, Any]:
        return {"pairs": 0} | {_tp(lv): 0 for lv in self.levels}


def _tp(level: str) -> str:
    return f"tp_{level}"


def build_score_table(con: duckdb.DuckDBPyConnection, pairs: str, tables: EvalTables) -> ScoreTable:
    """Reduce the scored pairs to a :class:`ScoreTable` (NULL scores are ignored).

    One DuckDB pass joins every pair to ``ev_base`` (parallel, unordered); the scores
    are then sorted in numpy (SIMD sort, far cheaper than DuckDB's ORDER BY of the
    joined rows) and the true pairs of each level are counted per distinct score by a
    search of their sorted scores into the distinct ones, then summed from the highest
    score down, so no argsort or gather of the flags is needed. Scores are compared as
    doubles; NaN counts as the highest score (DuckDB's order).
    """
    same = ", ".join(
        f"COALESCE(a.{col} = b.{col}, FALSE) AS {_tp(lv)}"
        for lv, col in LEVELS.items()
        if lv in tables.levels
    )
    arrays = engine.query(
        con,
        f"""
        SELECT CAST(p.score AS DOUBLE) AS score, {same}
        FROM {engine.quote_ident(pairs)} AS p
        JOIN {tables.base} AS a ON p.record_id_l = a.record_id
        JOIN {tables.base} AS b ON p.record_id_r = b.record_id
        WHERE p.score IS NOT NULL
        """,
        step="evaluation: score histogram",
    )
    return _reduce_scores(tables.levels, arrays)


def _reduce_scores(levels: tuple[str, ...], arrays: pa.Table) -> ScoreTable:
    """The :class:`ScoreTable` of the joined ``score, tp_<level>...`` rows."""
    raw = arrays.column("score").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    m = len(raw)
    if m == 0:
        z = np.zeros(0, dtype=np.int64)
        return ScoreTable(levels, raw, z, z, {lv: z for lv in levels})
    # Large temporaries are few and sorted / updated in place: fresh pages are what
    # this step mostly costs on a loaded machine.
    # the true pairs' scores of each level, ascending with NaNs last
    true_scores = {}
    for lv in levels:
        ts = raw[arrays.column(_tp(lv)).to_numpy(zero_copy_only=False)]
        ts.sort()
        true_scores[lv] = ts
    del arrays
    if not raw.flags.writeable:
        raw = raw.copy()
    # ascending with NaNs last, reversed: descending with NaNs first
    raw.sort()
    score = raw[::-1]
    nan = np.isnan(score)
    # last row of each run of equal scores (NaNs form one run, as in GROUP BY)
    last = np.empty(m, dtype=bool)
    np.not_equal(score[1:], score[:-1], out=last[:-1])
    last[:-1] &= ~(nan[1:] & nan[:-1])
    last[-1] = True
    del nan
    ends = np.flatnonzero(last)
    del last
    distinct = score[ends]
    del raw, score
    cum_pairs = ends
    cum_pairs += 1
    n = np.empty_like(cum_pairs)
    n[0] = cum_pairs[0]
    np.subtract(cum_pairs[1:], cum_pairs[:-1], out=n[1:])
    # The distinct finite scores ascending: each true pair's score is found there (a
    # search of the fewer true scores, in order, into the distinct scores), counted per
    # distinct score and summed from the highest down.
    n_nan_rows = int(np.count_nonzero(np.isnan(distinct[:1])))
    ascending = np.ascontiguousarray(distinct[n_nan_rows:][::-1])
    tp = {}
    for lv, ts in true_scores.items():
        n_nan = int(np.count_nonzero(np.isnan(ts)))
        at = np.searchsorted(ascending, ts[: len(ts) - n_nan], side="left")
        per_score = np.bincount(at, minlength=len(ascending))
        # true pairs scored >= s: the finite ones >= s plus every NaN-scored one (the NaN
        # row, first when present, counts the NaNs only)
        cum = np.empty(len(distinct), dtype=np.int64)
        cum[:n_nan_rows] = n_nan
        np.cumsum(per_score[::-1], out=cum[n_nan_rows:])
        cum[n_nan_rows:] += n_nan
        tp[lv] = cum
    return ScoreTable(levels, distinct, n, cum_pairs, tp)


def _totals(scores: ScoreTable) -> dict[str, Any]:
    """The last row (all pairs), zeros when there are no pairs."""
    return scores.row(len(scores) - 1) if len(scores) else scores.empty_row()


def _accepted(scores: ScoreTable, threshold: float) -> dict[str, Any]:
    """Cumulative counts of the pairs scored ``>= threshold`` (NaN counts as highest)."""
    k = int(np.count_nonzero((scores.score >= float(threshold)) | np.isnan(scores.score)))
    return scores.row(k - 1) if k else scores.empty_row()


def _pair_counts(pairs: int, tp: int, true_pairs: int) -> dict[str, Any]:
    """Counts and pairwise precision / recall / F1 of a set of declared pairs."""
    fp, fn = pairs - tp, true_pairs - tp
    return {
        "pairs": pairs,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, pairs),
        "recall": ratio(tp, true_pairs),
        "f1": f_beta(tp, fp, fn, 1.0),
    }


def _stage(name: str, pairs: int, tp: int, true_pairs: int) -> dict[str, Any]:
    return {"stage": name, **_pair_counts(pairs, tp, true_pairs)}


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def candidate_metrics(
    scores: ScoreTable,
    core: Mapping[str, Mapping[str, Any]],
    *,
    threshold: float | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Blocking quality and stage attribution per level.

    Parameters
    ----------
    scores
        The :class:`ScoreTable` of the candidate pairs.
    core
        Level -> the partition metrics of :func:`bench.metrics.evaluate`.
    threshold
        The matcher's acceptance threshold; without it the ``threshold`` stage and the
        attributions that need it are ``None``.

    Returns
    -------
    dict
        Level -> block described in the module docstring.
    """
    totals = _totals(scores)
    accepted = _accepted(scores, threshold) if threshold is not None else None
    out: dict[str, dict[str, Any] | None] = {}
    for level in LEVELS:
        if level not in scores.levels:
            out[level] = None
            continue
        m = core[level]
        n, true = m["n_records"], m["true_pairs"]
        possible = n * (n - 1) // 2
        cand = _stage("candidates", to_int(totals["pairs"]), to_int(totals[_tp(level)]), true)
        clus = _stage("clusters", m["pred_pairs"], m["tp_pairs"], true)
        thr = (
            _stage("threshold", to_int(accepted["pairs"]), to_int(accepted[_tp(level)]), true)
            if accepted is not None
            else None
        )
        out[level] = {
            "n_records": n,
            "possible_pairs": possible,
            "candidate_pairs": cand["pairs"],
            "true_candidate_pairs": cand["tp"],
            "true_pairs": true,
            "pair_completeness": cand["recall"],
            "reduction_ratio": None if possible == 0 else 1 - cand["pairs"] / possible,
            "candidate_precision": cand["precision"],
            "threshold": threshold,
            "stages": [s for s in (cand, thr, clus) if s is not None],
            "recall_lost_at_candidates": ratio(true - cand["tp"], true),
            "recall_lost_at_threshold": (
                None if thr is None else ratio(cand["tp"] - thr["tp"], true)
            ),
            "recall_gained_at_clustering": (
                None if thr is None else ratio(clus["tp"] - thr["tp"], true)
            ),
            "precision_lost_at_clustering": (
                None if thr is None else _diff(thr["precision"], clus["precision"])
            ),
        }
    return out


def _point(level: str, row: Mapping[str, Any], true_pairs: int) -> dict[str, Any]:
    pairs, tp = to_int(row["pairs"]), to_int(row[_tp(level)])
    counts = _pair_counts(pairs, tp, true_pairs)
    return {
        "level": level,
        "threshold": float(row["score"]),
        **counts,
        "f0_5": f_beta(tp, counts["fp"], counts["fn"], 0.5),
    }


def curve(
    scores: ScoreTable,
    true_pairs: Mapping[str, int],
    *,
    n_points: int = 100,
) -> list[dict[str, Any]]:
    """Precision-recall points at quantile thresholds, every level, descending threshold.

    A distinct score becomes a point when the cumulative pair count crosses a multiple of
    ``total / n_points`` at it; the highest and lowest scores are always points, so a
    level has at most ``n_points + 2`` points. Each point: ``level``, ``threshold``,
    ``pairs``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``f0_5``.
    """
    if len(scores) == 0:
        return []
    pairs, n = scores.pairs, scores.n
    total = int(pairs[-1])
    # floor(pairs * n_points / total) after and before each distinct score, in place:
    # the same doubles as the former SQL (CAST(pairs AS DOUBLE) * n_points / total)
    hi = pairs.astype(np.float64)
    lo = np.empty_like(hi)
    np.subtract(pairs, n, out=lo)  # exact in int64, then a double
    for buf in (hi, lo):
        np.multiply(buf, n_points, out=buf)
        np.divide(buf, total, out=buf)
        np.floor(buf, out=buf)
    keep = np.greater(hi, lo)
    del hi, lo
    # the first row (pairs == n) and the last (pairs == total) are always points
    keep[0] = keep[-1] = True
    idx = np.flatnonzero(keep)
    rows = [scores.row(int(i)) for i in idx]
    return [_point(lv, r, true_pairs[lv]) for lv in scores.levels for r in rows]


def _first(values: np.ndarray, *, largest: bool) -> int:
    """Index of the first maximum (``largest``) or minimum: the highest score on ties."""
    return int(np.argmax(values) if largest else np.argmin(values))


def threshold_summary(
    scores: ScoreTable,
    true_pairs: Mapping[str, int],
    *,
    recall_levels: Sequence[float] = RECALL_LEVELS,
) -> dict[str, dict[str, Any] | None]:
    """Best-F1 / best-F0.5 thresholds and precision at fixed recall, per level.

    Exact over every distinct score (numpy scans of the :class:`ScoreTable`).

    Returns
    -------
    dict
        Level -> ``{"best_f1": point, "best_f0_5": point, "at_recall": [{"recall_level",
        "threshold", "precision", "recall", ...}]}`` (points as in :func:`curve`;
        ``None`` where no pair was scored or the level has no true pairs). Unreachable
        recall levels have ``threshold`` and ``precision`` ``None``.
    """
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(LEVELS)
    if len(scores) == 0:
        return out
    pairs = scores.pairs
    num, den = np.empty(len(scores)), np.empty(len(scores))
    for level in scores.levels:
        t = int(true_pairs[level])
        if t == 0:
            continue
        tp = scores.tp[level]
        # 2 tp / (T + pairs) and 1.25 tp / (0.25 T + pairs) are the F formulas of
        # bench.metrics.core with fp and fn expanded: the same doubles, bit for bit
        # (computed in two reused buffers).
        np.multiply(tp, 2.0, out=num)
        np.add(pairs, t, out=den, dtype=np.int64)  # T + pairs, exact in int64, as a double
        f1 = _first(np.divide(num, den, out=num), largest=True)
        np.multiply(tp, 1.25, out=num)
        np.add(pairs, 0.25 * t, out=den)
        f05 = _first(np.divide(num, den, out=num), largest=True)
        # recall (tp / T as a double) is non-decreasing down the table: the first row
        # reaching a level, i.e. the highest such threshold, by binary search
        recall = np.divide(tp, t, out=num)
        at_recall = []
        for r in recall_levels:
            i = int(np.searchsorted(recall, float(r), side="left"))
            at_recall.append(
                {"recall_level": r}
                | (
                    _point(level, scores.row(i), t)
                    if i < len(recall)
                    else {"threshold": None, "precision": None, "recall": None, "pairs": None}
                )
            )
        out[level] = {
            "best_f1": _point(level, scores.row(f1), t),
            "best_f0_5": _point(level, scores.row(f05), t),
            "at_recall": at_recall,
        }
    return out


def cost_thresholds(
    scores: ScoreTable,
    true_pairs: Mapping[str, int],
    *,
    cost_ratios: Sequence[float] = COST_RATIOS,
) -> dict[str, list[dict[str, Any]] | None]:
    """Per level, for each cost ratio ``C``, the threshold minimising ``C * fp + fn``.

    Returns
    -------
    dict
        Level -> list of points (as in :func:`curve`) with ``cost_ratio`` and ``cost``
        added; ``None`` for a missing level, ``[]`` when no pair was scored.
    """
    out: dict[str, list[dict[str, Any]] | None] = dict.fromkeys(LEVELS)
    cost, fp = np.empty(len(scores)), np.empty(len(scores), dtype=np.int64)
    for level in scores.levels:
        if len(scores) == 0:
            out[level] = []
            continue
        t, tp = int(true_pairs[level]), scores.tp[level]
        rows = []
        for c in cost_ratios:
            # C * fp + fn as a double, in reused buffers: C * (pairs - tp) + (T - tp)
            np.subtract(scores.pairs, tp, out=fp)
            np.multiply(fp, float(c), out=cost)
            np.subtract(t, tp, out=fp)
            i = _first(np.add(cost, fp, out=cost), largest=False)
            p = _point(level, scores.row(i), t)
            rows.append({"cost_ratio": c, "cost": c * p["fp"] + p["fn"]} | p)
        out[level] = rows
    return out
