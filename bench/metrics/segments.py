"""Pairwise metrics per pair class, for datasets with both lenses.

A dataset with first-party records (CRM, orders, loyalty, POS, logins) and anonymous
identifiers (cookies, ad ids) mixes three kinds of pairs with very different counts and
difficulty; the headline pairwise figures are dominated by whichever is most numerous.
Each class is scored on its own:

``first_party``
    pairs of two first-party records;
``anonymous_first_party``
    pairs of an anonymous record and a first-party record (the bridge a CDP builds from
    logins and orders);
``anonymous``
    pairs of two anonymous records (the CIKM Cup pairs of :mod:`bench.metrics.anchors`).

From the contingency table with the anonymous count kept per row
(:mod:`bench.metrics.tables`): a row with ``f`` first-party and ``a`` anonymous records
holds ``f(f-1)/2``, ``f a`` and ``a(a-1)/2`` pairs of the three classes. Summed over
cells these are the true positives, over clusters the predicted pairs, over entities
the true pairs; precision, recall and F1 per class follow as in
:mod:`bench.metrics.core`. The three classes partition all pairs, so their counts add
up to the level's ``tp_pairs`` / ``pred_pairs`` / ``true_pairs``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bench.metrics.core import DECIMAL_SUM, f_beta, ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["SEGMENTS", "segment_metrics"]

log = logging.getLogger(__name__)

#: Pair class -> twice its pair count from a row's ``f`` (first-party) and ``a``
#: (anonymous) records (twice so that every term is an integer).
SEGMENTS: dict[str, str] = {
    "first_party": "f * (f - 1)",
    "anonymous_first_party": "2 * f * a",
    "anonymous": "a * (a - 1)",
}

# gc / ge: 0 0 a cell (tp), 0 1 a cluster (predicted), 1 0 an entity (true).
_KINDS = {"tp": (0, 0), "pred": (0, 1), "true": (1, 0)}


def _sql(grouped: str) -> str:
    sums = [
        f"SUM(CASE WHEN gc = {gc} AND ge = {ge} THEN {expr} END) AS {kind}_{name}"
        for name, expr in SEGMENTS.items()
        for kind, (gc, ge) in _KINDS.items()
    ]
    return (
        f"SELECT SUM(CASE WHEN gc = 1 AND ge = 0 THEN f END) AS first_party_records, "
        f"SUM(CASE WHEN gc = 1 AND ge = 0 THEN a END) AS anonymous_records, {', '.join(sums)} "
        f"FROM (SELECT gc, ge, CAST(n - na AS {DECIMAL_SUM}) AS f, "
        f"CAST(na AS {DECIMAL_SUM}) AS a FROM {grouped}) AS g"
    )


def segment_metrics(
    con: duckdb.DuckDBPyConnection, tables: EvalTables
) -> dict[str, dict[str, Any] | None] | None:
    """Pair precision / recall / F1 per pair class, per level.

    Returns
    -------
    dict or None
        ``None`` unless the records hold both first-party and anonymous records; else
        level -> ``{"first_party_records", "anonymous_records", <class>: {"tp_pairs",
        "pred_pairs", "true_pairs", "precision", "recall", "f1"}}`` for each class of
        :data:`SEGMENTS` (``None`` for a missing level).
    """
    if tables.n_anonymous == 0:
        return None
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(LEVELS)
    for level in tables.levels:
        r = engine.query_one(
            con, _sql(tables.grouped(level)), step=f"evaluation: pair segments ({level})"
        )
        if not to_int(r["first_party_records"]):
            return None
        block: dict[str, Any] = {
            "first_party_records": to_int(r["first_party_records"]),
            "anonymous_records": to_int(r["anonymous_records"]),
        }
        for name in SEGMENTS:
            tp, pred, true = (to_int(r[f"{k}_{name}"]) // 2 for k in _KINDS)
            block[name] = {
                "tp_pairs": tp,
                "pred_pairs": pred,
                "true_pairs": true,
                "precision": ratio(tp, pred),
                "recall": ratio(tp, true),
                "f1": f_beta(tp, pred - tp, true - tp, 1.0),
            }
        out[level] = block
    return out
