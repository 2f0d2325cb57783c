"""Scored-pair metrics: blocking, stage attribution and threshold sweeps.

For matchers that emit candidate pairs (``record_id_l, record_id_r, score``). The pairs
are joined to the truth once and reduced to a histogram by distinct score,
``ev_score_cum``: for each distinct score ``s`` (in descending order) the number of pairs
scored ``>= s`` and how many of them are true at each level. Every quantity below is a
lookup or a scan of that table, so the cost is one join and one sort of the candidate
pairs; no pair outside the candidates is ever formed.

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
from typing import TYPE_CHECKING, Any

from bench import engine
from bench.metrics_tables import LEVELS, EvalTables, f_beta, ratio, to_int

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "COST_RATIOS",
    "RECALL_LEVELS",
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

_CUM = "ev_score_cum"


def _tp(level: str) -> str:
    return f"tp_{level}"


def build_score_table(con: duckdb.DuckDBPyConnection, pairs: str, tables: EvalTables) -> None:
    """Create ``ev_score_cum``: per distinct score, cumulative pair and true-pair counts.

    Columns: ``score``, ``n`` (pairs with exactly this score), ``pairs`` (pairs scored
    ``>= score``) and ``tp_<level>`` (those within one entity of the level). Pairs with a
    NULL score are ignored.
    """
    same = ",\n".join(
        f"SUM(CASE WHEN a.{col} = b.{col} THEN 1 ELSE 0 END) AS {_tp(lv)}"
        for lv, col in LEVELS.items()
        if lv in tables.levels
    )
    cum = ",\n".join(f"SUM({_tp(lv)}) OVER w AS {_tp(lv)}" for lv in tables.levels)
    engine.execute(
        con,
        f"""
        CREATE OR REPLACE TABLE {_CUM} AS
        WITH hist AS (
            SELECT p.score, COUNT(*) AS n,
                   {same}
            FROM {engine.quote_ident(pairs)} AS p
            JOIN {tables.base} AS a ON p.record_id_l = a.record_id
            JOIN {tables.base} AS b ON p.record_id_r = b.record_id
            WHERE p.score IS NOT NULL
            GROUP BY p.score
        )
        SELECT score, n, SUM(n) OVER w AS pairs, {cum}
        FROM hist
        -- scores are distinct here, so the default RANGE frame is a running sum
        WINDOW w AS (ORDER BY score DESC)
        """,
        step="evaluation: score histogram",
    )


def _totals(con: duckdb.DuckDBPyConnection, tables: EvalTables) -> dict[str, Any]:
    """The last row of ``ev_score_cum`` (all pairs), zeros when there are no pairs."""
    cols = ", ".join(_tp(lv) for lv in tables.levels)
    rows = engine.query(
        con,
        f"SELECT pairs, {cols} FROM {_CUM} ORDER BY score ASC LIMIT 1",
        step="evaluation: candidate totals",
    ).to_pylist()
    return rows[0] if rows else {"pairs": 0} | {_tp(lv): 0 for lv in tables.levels}


def _accepted(
    con: duckdb.DuckDBPyConnection, tables: EvalTables, threshold: float
) -> dict[str, Any]:
    """Cumulative counts of the pairs scored ``>= threshold``."""
    cols = ", ".join(_tp(lv) for lv in tables.levels)
    rows = engine.query(
        con,
        f"SELECT pairs, {cols} FROM {_CUM} WHERE score >= ? ORDER BY score ASC LIMIT 1",
        [float(threshold)],
        step="evaluation: pairs at the matcher's threshold",
    ).to_pylist()
    return rows[0] if rows else {"pairs": 0} | {_tp(lv): 0 for lv in tables.levels}


def _stage(name: str, pairs: int, tp: int, true_pairs: int) -> dict[str, Any]:
    fp, fn = pairs - tp, true_pairs - tp
    return {
        "stage": name,
        "pairs": pairs,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, pairs),
        "recall": ratio(tp, true_pairs),
        "f1": f_beta(tp, fp, fn, 1.0),
    }


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def candidate_metrics(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
    core: Mapping[str, Mapping[str, Any]],
    *,
    threshold: float | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Blocking quality and stage attribution per level.

    Parameters
    ----------
    con, tables
        The evaluation connection and tables, with ``ev_score_cum`` built.
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
    totals = _totals(con, tables)
    accepted = _accepted(con, tables, threshold) if threshold is not None else None
    out: dict[str, dict[str, Any] | None] = {}
    for level in LEVELS:
        if level not in tables.levels:
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
    fp, fn = pairs - tp, true_pairs - tp
    return {
        "level": level,
        "threshold": float(row["score"]),
        "pairs": pairs,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, pairs),
        "recall": ratio(tp, true_pairs),
        "f1": f_beta(tp, fp, fn, 1.0),
        "f0_5": f_beta(tp, fp, fn, 0.5),
    }


def curve(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
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
    cols = ", ".join(_tp(lv) for lv in tables.levels)
    total = to_int(_totals(con, tables)["pairs"])
    if total == 0:
        return []
    rows = engine.query(
        con,
        f"""
        SELECT score, pairs, {cols} FROM {_CUM}
        WHERE pairs = n OR pairs = ?
           OR FLOOR(CAST(pairs AS DOUBLE) * ? / ?) > FLOOR(CAST(pairs - n AS DOUBLE) * ? / ?)
        ORDER BY score DESC
        """,
        [total, n_points, total, n_points, total],
        step="evaluation: precision-recall curve",
    ).to_pylist()
    return [_point(lv, r, true_pairs[lv]) for lv in tables.levels for r in rows]


def _best_rows(
    con: duckdb.DuckDBPyConnection,
    level: str,
    true_pairs: int,
    orders: Sequence[tuple[str, str, str, list[Any]]],
) -> dict[str, dict[str, Any] | None]:
    """One top-1 lookup per ``(name, where, order by, params)``, in one statement."""
    tp = _tp(level)
    parts, params = [], []
    for name, where, order, ps in orders:
        parts.append(
            f"SELECT * FROM (SELECT {engine.literal(name)} AS what, score, pairs, {tp} "
            f"FROM {_CUM} WHERE {where} ORDER BY {order}, score DESC LIMIT 1) AS x"
        )
        params.extend(ps)
    rows = engine.query(
        con, "\nUNION ALL\n".join(parts), params, step=f"evaluation: thresholds ({level})"
    ).to_pylist()
    found = {r["what"]: _point(level, r, true_pairs) for r in rows}
    return {name: found.get(name) for name, *_ in orders}


def threshold_summary(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
    true_pairs: Mapping[str, int],
    *,
    recall_levels: Sequence[float] = RECALL_LEVELS,
) -> dict[str, dict[str, Any] | None]:
    """Best-F1 / best-F0.5 thresholds and precision at fixed recall, per level.

    Returns
    -------
    dict
        Level -> ``{"best_f1": point, "best_f0_5": point, "at_recall": [{"recall_level",
        "threshold", "precision", "recall", ...}]}`` (points as in :func:`curve`;
        ``None`` where no pair was scored or the level has no true pairs). Unreachable
        recall levels have ``threshold`` and ``precision`` ``None``.
    """
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(LEVELS)
    has_pairs = to_int(_totals(con, tables)["pairs"]) > 0
    for level in tables.levels:
        t = true_pairs[level]
        if not has_pairs or t == 0:
            continue
        tp = _tp(level)
        orders = [
            # 2 tp / (T + pairs) and 1.25 tp / (0.25 T + pairs) are the F formulas of
            # bench.metrics with fp and fn expanded: the same doubles, bit for bit.
            ("best_f1", "TRUE", f"2.0 * {tp} / (? + pairs) DESC", [t]),
            ("best_f0_5", "TRUE", f"1.25 * {tp} / (0.25 * ? + pairs) DESC", [t]),
        ]
        orders += [
            (f"recall_{r!r}", f"CAST({tp} AS DOUBLE) / ? >= ?", "score DESC", [t, float(r)])
            for r in recall_levels
        ]
        best = _best_rows(con, level, t, orders)
        at_recall = []
        for r in recall_levels:
            p = best[f"recall_{r!r}"]
            at_recall.append(
                {"recall_level": r}
                | (
                    p
                    if p is not None
                    else {"threshold": None, "precision": None, "recall": None, "pairs": None}
                )
            )
        out[level] = {"best_f1": best["best_f1"], "best_f0_5": best["best_f0_5"]} | {
            "at_recall": at_recall
        }
    return out


def cost_thresholds(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
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
    has_pairs = to_int(_totals(con, tables)["pairs"]) > 0
    for level in tables.levels:
        if not has_pairs:
            out[level] = []
            continue
        t, tp = true_pairs[level], _tp(level)
        orders = [
            (
                f"cost_{c!r}",
                "TRUE",
                f"CAST(? AS DOUBLE) * (pairs - {tp}) + (? - {tp}) ASC",
                [float(c), t],
            )
            for c in cost_ratios
        ]
        best = _best_rows(con, level, t, orders)
        rows = []
        for c in cost_ratios:
            p = best[f"cost_{c!r}"]
            assert p is not None  # there is at least one scored pair
            rows.append({"cost_ratio": c, "cost": c * p["fp"] + p["fn"]} | p)
        out[level] = rows
    return out
