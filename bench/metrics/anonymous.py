"""The anonymous task over the whole horizon: the challenges' metrics and a per-identifier F0.5.

The population is the records whose ``source`` is an anonymous identifier (``cookie``,
``maid``: ``ev_base.is_anon``); both the predicted partition and the truth are
restricted to it, so a cookie linked only through a CRM record still counts as linked to
the other cookies of that cluster. Everything comes from the anonymous and device counts
that the contingency table keeps beside the full ones (:mod:`bench.metrics.tables`).

The anchors' metrics (``drawbridge_f0_5`` per device, the CIKM Cup's ``pair_*``) are
defined in :mod:`bench.metrics.anchors`; :mod:`bench.metrics.windows` scores them again
per observation window.

Beside them, a per-identifier variant that averages over *every* anonymous record (not
the Drawbridge score: most identifiers are cookies). For an anonymous record ``r`` in
restricted cell (cluster ``C``, entity ``E``) with ``n`` anonymous records (``|C|``,
``|E|`` the anonymous records of its cluster and entity):

- predicted partners ``pred = |C| - 1``, true partners ``true = |E| - 1``, correct
  partners ``tp = n - 1``.
- ``F0.5(r) = 1.25 tp / (0.25 true + pred)``: precision ``tp / pred`` and recall
  ``tp / true`` combined with beta = 0.5. A record with no true and no predicted partner
  was rightly left alone: ``F0.5 = 1``. A record with partners on one side only has
  ``F0.5 = 0``.
- ``per_identifier_f0_5``: the mean of ``F0.5(r)`` over all anonymous records;
  ``per_identifier_f0_5_linked``: over those with at least one true partner.
  ``per_identifier_precision`` averages over records with a predicted partner,
  ``per_identifier_recall`` over records with a true partner.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bench.metrics.anchors import anchor_block, anchor_sums
from bench.metrics.core import BCUBED_SCALE, DECIMAL_SUM, ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["anonymous_cells", "anonymous_metrics"]

log = logging.getLogger(__name__)

# The anonymous records' restricted cells are the cells of the contingency table with
# anonymous records (``na > 0``), and their cluster / entity sizes are the anonymous
# counts ``nca`` / ``nea`` kept beside the full ones: no pass over the records here.
_PER_IDENTIFIER_SQL = """
WITH cells AS (SELECT n, nc, ne FROM ({cells}) AS x)
SELECT
    SUM(n) AS records,
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
"""


def anonymous_cells(tables: EvalTables, level: str) -> str:
    """Query of the anonymous cells of ``level`` (columns of :mod:`bench.metrics.anchors`)."""
    return (
        "SELECT na AS n, nca AS nc, nea AS ne, nd, ncd, ned "
        f"FROM {tables.cells(level)} WHERE na > 0"
    )


def _per_identifier(con: duckdb.DuckDBPyConnection, cells: str, level: str) -> dict[str, Any]:
    r = engine.query_one(
        con,
        _PER_IDENTIFIER_SQL.format(cells=cells, d=DECIMAL_SUM, scale=BCUBED_SCALE),
        step=f"evaluation: anonymous records ({level})",
    )
    n, linked, predicted = to_int(r["records"]), to_int(r["linked"]), to_int(r["predicted"])
    return {
        "records": n,
        "linked_records": linked,
        "predicted_records": predicted,
        "per_identifier_f0_5": ratio(to_int(r["f05"]), n * BCUBED_SCALE),
        "per_identifier_f0_5_linked": ratio(to_int(r["f05_linked"]), linked * BCUBED_SCALE),
        "per_identifier_precision": ratio(to_int(r["prec"]), predicted * BCUBED_SCALE),
        "per_identifier_recall": ratio(to_int(r["rec"]), linked * BCUBED_SCALE),
    }


def anonymous_metrics(
    con: duckdb.DuckDBPyConnection, tables: EvalTables
) -> dict[str, dict[str, Any] | None] | None:
    """The anchors' metrics and the per-identifier F0.5 over anonymous records, per level.

    Returns
    -------
    dict or None
        ``None`` when the dataset has no anonymous records; else level -> ``{"records",
        "linked_records", "predicted_records", "per_identifier_f0_5",
        "per_identifier_f0_5_linked", "per_identifier_precision",
        "per_identifier_recall"}`` and the keys of
        :data:`bench.metrics.anchors.ANCHOR_KEYS` (``drawbridge_f0_5``, ``pair_f1``, ...;
        definitions in the module docstrings; ``None`` for a missing level).
    """
    if tables.n_anonymous == 0:
        return None
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(LEVELS)
    for level in tables.levels:
        cells = anonymous_cells(tables, level)
        (sums,) = anchor_sums(con, cells, step=f"evaluation: anchors ({level})")
        out[level] = {**_per_identifier(con, cells, level), **anchor_block(sums)}
    return out
