"""Metrics of the public cross-device challenges, on the anonymous identifier records.

The population is the records whose ``source`` is an anonymous identifier (``cookie``,
``maid``: ``ev_base.is_anon``); both the predicted partition and the truth are
restricted to it, so a cookie linked only through a CRM record still counts as linked to
the other cookies of that cluster. Everything comes from the anonymous counts that the
contingency table keeps beside the full ones (:mod:`bench.metrics.tables`).

Definitions, for an anonymous record ``r`` in restricted cell (cluster ``C``, entity
``E``) with ``n`` anonymous records (``|C|``, ``|E|`` the anonymous records of its
cluster and entity):

- predicted partners ``pred = |C| - 1``, true partners ``true = |E| - 1``, correct
  partners ``tp = n - 1``.
- Per-record (Drawbridge, ICDM 2015) ``F0.5(r) = 1.25 tp / (0.25 true + pred)``:
  precision ``tp / pred`` and recall ``tp / true`` combined with beta = 0.5. A record
  with no true and no predicted partner was rightly left alone: ``F0.5 = 1``. A record
  with partners on one side only has ``F0.5 = 0``.
- ``mean_f0_5``: the mean of ``F0.5(r)`` over all anonymous records;
  ``mean_f0_5_linked``: over those with at least one true partner (the Drawbridge
  population: every scored device had a cookie). ``mean_precision`` averages over
  records with a predicted partner, ``mean_recall`` over records with a true partner.
- Pair metrics (CIKM Cup 2016): ``pair_precision``, ``pair_recall``, ``pair_f1`` over
  the unordered pairs of anonymous records, exactly :func:`bench.metrics.evaluate` on the
  restricted partition.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bench.metrics.core import BCUBED_SCALE, DECIMAL_SUM, f_beta, ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["anonymous_metrics"]

log = logging.getLogger(__name__)

# The anonymous records' restricted cells are the cells of the contingency table with
# anonymous records (``na > 0``), and their cluster / entity sizes are the anonymous
# counts ``nca`` / ``nea`` kept beside the full ones: no pass over the records here.
_SQL = """
WITH cells AS (
    SELECT na AS n, nca AS nc, nea AS ne FROM {cells} WHERE na > 0
),
cell_stats AS (
    SELECT
        SUM(n) AS records,
        SUM(CAST(n * (n - 1) AS {d})) AS tp2,
        SUM(CASE WHEN ne > 1 THEN n ELSE 0 END) AS linked,
        SUM(CASE WHEN nc > 1 THEN n ELSE 0 END) AS predicted,
        -- n records, each with F0.5 = 1.25 (n-1) / (0.25 (ne-1) + (nc-1)), in 1e-18 units
        SUM(CASE WHEN nc = 1 AND ne = 1 THEN CAST(n AS {d}) * {scale}
                 ELSE CAST(ROUND(CAST(n AS DOUBLE) * 1.25 * (n - 1) * {scale}
                                 / (0.25 * (ne - 1) + (nc - 1))) AS {d}) END) AS f05,
        SUM(CASE WHEN ne > 1
                 THEN CAST(ROUND(CAST(n AS DOUBLE) * 1.25 * (n - 1) * {scale}
                                 / (0.25 * (ne - 1) + (nc - 1))) AS {d})
                 ELSE 0 END) AS f05_linked,
        SUM(CASE WHEN nc > 1
                 THEN CAST(ROUND(CAST(n AS DOUBLE) * (n - 1) * {scale} / (nc - 1)) AS {d})
                 ELSE 0 END) AS prec,
        SUM(CASE WHEN ne > 1
                 THEN CAST(ROUND(CAST(n AS DOUBLE) * (n - 1) * {scale} / (ne - 1)) AS {d})
                 ELSE 0 END) AS rec
    FROM cells
)
SELECT
    s.*,
    (SELECT SUM(CAST(na * (na - 1) AS {d})) FROM {grouped} WHERE gc = 0 AND ge = 1) AS pred2,
    (SELECT SUM(CAST(na * (na - 1) AS {d})) FROM {grouped} WHERE gc = 1 AND ge = 0) AS true2
FROM cell_stats AS s
"""


def anonymous_metrics(
    con: duckdb.DuckDBPyConnection, tables: EvalTables
) -> dict[str, dict[str, Any] | None] | None:
    """Per-record F0.5 and pair F1 over anonymous records, per level.

    Returns
    -------
    dict or None
        ``None`` when the dataset has no anonymous records; else level -> ``{"records",
        "linked_records", "predicted_records", "mean_f0_5", "mean_f0_5_linked",
        "mean_precision", "mean_recall", "pred_pairs", "true_pairs", "tp_pairs",
        "pair_precision", "pair_recall", "pair_f1"}`` (definitions in the module
        docstring; ``None`` for a missing level).
    """
    if tables.n_anonymous == 0:
        return None
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(LEVELS)
    for level in tables.levels:
        r = engine.query_one(
            con,
            _SQL.format(
                cells=tables.cells(level),
                grouped=tables.grouped(level),
                d=DECIMAL_SUM,
                scale=BCUBED_SCALE,
            ),
            step=f"evaluation: anonymous records ({level})",
        )
        n, linked, predicted = to_int(r["records"]), to_int(r["linked"]), to_int(r["predicted"])
        tp, pred, true = to_int(r["tp2"]) // 2, to_int(r["pred2"]) // 2, to_int(r["true2"]) // 2
        out[level] = {
            "records": n,
            "linked_records": linked,
            "predicted_records": predicted,
            "mean_f0_5": ratio(to_int(r["f05"]), n * BCUBED_SCALE),
            "mean_f0_5_linked": ratio(to_int(r["f05_linked"]), linked * BCUBED_SCALE),
            "mean_precision": ratio(to_int(r["prec"]), predicted * BCUBED_SCALE),
            "mean_recall": ratio(to_int(r["rec"]), linked * BCUBED_SCALE),
            "pred_pairs": pred,
            "true_pairs": true,
            "tp_pairs": tp,
            "pair_precision": ratio(tp, pred),
            "pair_recall": ratio(tp, true),
            "pair_f1": f_beta(tp, pred - tp, true - tp, 1.0),
        }
    return out
