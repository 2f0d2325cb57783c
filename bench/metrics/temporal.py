"""Metrics per calendar month of the records' timestamps (``records.ts``).

Month ``m`` holds the records whose ``ts`` falls in it (records without ``ts`` belong to
no month). Its metrics describe how well *those records* are attached to their whole
history: every record is scored against the full partition, then records are averaged
or summed by month. That is the view in which identity decays as cookies and phone
numbers churn (a cookie of month 11 that was never linked to the customer's CRM record
of month 1 lowers month 11's recall), and it needs one join of the records to their
cells, no pair enumeration and no per-month re-clustering.

For a record ``r`` in cell (cluster ``C``, entity ``E``) holding ``n`` records:

- ``pred_pairs``, ``true_pairs``, ``tp_pairs``: the sums over the month's records of
  ``|C| - 1`` (predicted partners), ``|E| - 1`` (true partners) and ``n - 1`` (correct
  partners). These are the pairs incident to the month's records, a pair counted once
  per endpoint in the month (twice when both records are in it).
- ``precision = tp_pairs / pred_pairs``, ``recall = tp_pairs / true_pairs``, ``f1``
  from them: pairwise precision and recall over those incident pairs.
- ``bcubed_precision`` / ``bcubed_recall``: the month's mean of ``n / |C|`` and
  ``n / |E|`` (B-cubed as in :mod:`bench.metrics.core`, restricted to the month's records);
  ``bcubed_f1`` their harmonic mean.

Summed over all months (and records without ``ts``) the pair counts are twice the
partition's pair counts, so the all-month precision and recall equal the partition's.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from bench.metrics.core import BCUBED_SCALE, DECIMAL_SUM, f_beta, harmonic, ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["monthly_metrics"]

log = logging.getLogger(__name__)

_SQL = """
SELECT b.month AS m, COUNT(*) AS records, {sums}
FROM {base} AS b
{joins}
WHERE b.month IS NOT NULL
GROUP BY b.month
ORDER BY b.month
"""


def _month(value: Any) -> str:
    if isinstance(value, date):
        return f"{value.year:04d}-{value.month:02d}"
    return str(value)[:7]


def monthly_metrics(
    con: duckdb.DuckDBPyConnection, tables: EvalTables
) -> list[dict[str, Any]] | None:
    """Per-month metrics at every level, months ascending.

    Returns
    -------
    list of dict or None
        ``None`` when the records have no ``ts`` column; else rows ``{"level", "month"
        ("YYYY-MM"), "records", "pred_pairs", "true_pairs", "tp_pairs", "precision",
        "recall", "f1", "bcubed_precision", "bcubed_recall", "bcubed_f1"}``.
    """
    if not tables.has_month:
        return None
    sums, joins = [], []
    for lv in tables.levels:
        x = f"x_{lv}"
        col = engine.quote_ident(LEVELS[lv])
        joins.append(f"JOIN {tables.cells(lv)} AS {x} ON b.c = {x}.c AND b.{col} = {x}.e")
        scaled = f"CAST({x}.n AS DOUBLE) * {BCUBED_SCALE}"
        sums += [
            f"SUM({x}.n - 1) AS tp_{lv}",
            f"SUM({x}.nc - 1) AS pred_{lv}",
            f"SUM({x}.ne - 1) AS true_{lv}",
            f"SUM(CAST(ROUND({scaled} / {x}.nc) AS {DECIMAL_SUM})) AS bp_{lv}",
            f"SUM(CAST(ROUND({scaled} / {x}.ne) AS {DECIMAL_SUM})) AS br_{lv}",
        ]
    rows = engine.query(
        con,
        _SQL.format(base=tables.base, sums=",\n".join(sums), joins="\n".join(joins)),
        step="evaluation: monthly",
    ).to_pylist()
    out: list[dict[str, Any]] = []
    for level in tables.levels:
        for r in rows:
            n = to_int(r["records"])
            tp, pred, true = (to_int(r[f"{k}_{level}"]) for k in ("tp", "pred", "true"))
            bp = ratio(to_int(r[f"bp_{level}"]), n * BCUBED_SCALE)
            br = ratio(to_int(r[f"br_{level}"]), n * BCUBED_SCALE)
            out.append(
                {
                    "level": level,
                    "month": _month(r["m"]),
                    "records": n,
                    "pred_pairs": pred,
                    "true_pairs": true,
                    "tp_pairs": tp,
                    "precision": ratio(tp, pred),
                    "recall": ratio(tp, true),
                    "f1": f_beta(tp, pred - tp, true - tp, 1.0),
                    "bcubed_precision": bp,
                    "bcubed_recall": br,
                    "bcubed_f1": harmonic(bp, br),
                }
            )
    return out
