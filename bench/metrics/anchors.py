"""The metrics of the public cross-device challenges, exactly as they scored them.

Both read *anonymous cells*: the (predicted cluster, true entity) cells of the
anonymous records only (the partition and the truth both restricted to them), one row
per cell with

``n``, ``nc``, ``ne``
    anonymous records in the cell, in its cluster, of its entity;
``nd``, ``ncd``, ``ned``
    the devices (mobile ad ids, :data:`bench.metrics.tables.DEVICE_SOURCES`) among
    them; every other anonymous record is a cookie, so the cell has ``n - nd`` cookies.

Optionally a key column (an observation window, :mod:`bench.metrics.windows`) splits
the cells into groups, each scored on its own. Nothing is enumerated per record or
per pair: every sum is over cells.

**Drawbridge (ICDM 2015).** Each device ``d`` (a mobile ad id record) has predicted
cookies ``P_d`` (the cookie records of its predicted cluster) and true cookies ``T_d``
(the cookie records of its entity). With ``tp = |P_d & T_d|`` (the cookies of its
cell), precision ``p = tp / |P_d|``, recall ``r = tp / |T_d|`` and
``F0.5(d) = 1.25 p r / (0.25 p + r) = 1.25 tp / (0.25 |T_d| + |P_d|)``.
``drawbridge_f0_5`` is the mean of ``F0.5(d)`` over the *scored* devices, those with
at least one true cookie. As in the challenge, whose score averaged over all test
devices, a scored device with no predicted cookie scores 0 (it is not left out). A
device with no true cookie cannot be scored (``p`` has nothing to find, the challenge's
test devices all had cookies): it is left out and counted in
``devices_without_true_cookie``. ``drawbridge_precision`` is the mean ``p`` over scored
devices with a predicted cookie, ``drawbridge_recall`` the mean ``r`` over scored
devices.

**CIKM Cup 2016.** Pairwise precision, recall and F1 over the unordered pairs of
anonymous records (cookies and ad ids alike): ``tp_pairs = sum n(n-1)/2``,
``pred_pairs = sum over clusters``, ``true_pairs = sum over entities``; the latter two
are summed per cell as ``n (nc - 1) / 2`` and ``n (ne - 1) / 2`` (a cluster's cells sum
to ``nc``), so one relation of cells serves both.

Averages are summed as integers in units of :data:`bench.metrics.core.BCUBED_SCALE`, so
the same cells always give the same bits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bench.metrics.core import BCUBED_SCALE, DECIMAL_SUM, f_beta, ratio, to_int
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["ANCHOR_KEYS", "anchor_block", "anchor_sums"]

log = logging.getLogger(__name__)

#: The keys of :func:`anchor_block`.
ANCHOR_KEYS: tuple[str, ...] = (
    "devices",
    "devices_scored",
    "devices_without_true_cookie",
    "devices_with_predicted_cookie",
    "drawbridge_f0_5",
    "drawbridge_precision",
    "drawbridge_recall",
    "pred_pairs",
    "true_pairs",
    "tp_pairs",
    "pair_precision",
    "pair_recall",
    "pair_f1",
)

# Per cell: tc = true cookies of each of its devices, pc = predicted cookies, tpc =
# the cookies of the cell (right ones). A device is scored when tc > 0.
_SUMS_SQL = """
WITH x AS (
    SELECT {key} AS k, n, nc, ne, nd,
           ne - ned AS tc, nc - ncd AS pc, n - nd AS tpc
    FROM ({cells}) AS cells
)
SELECT
    k,
    SUM(n) AS records,
    SUM(CAST(n AS {d}) * (n - 1)) AS tp2,
    SUM(CAST(n AS {d}) * (nc - 1)) AS pred2,
    SUM(CAST(n AS {d}) * (ne - 1)) AS true2,
    SUM(nd) AS devices,
    SUM(nd) FILTER (WHERE tc > 0) AS scored,
    SUM(nd) FILTER (WHERE pc > 0) AS predicted,
    SUM(nd) FILTER (WHERE tc > 0 AND pc > 0) AS scored_predicted,
    -- CASE rather than FILTER: a FILTER still evaluates the division on the rows it drops
    SUM(CASE WHEN tc > 0 THEN CAST(ROUND(
        CAST(nd AS DOUBLE) * 1.25 * tpc * {scale} / (0.25 * tc + pc)) AS {d}) END) AS f05,
    SUM(CASE WHEN tc > 0 AND pc > 0 THEN CAST(ROUND(
        CAST(nd AS DOUBLE) * tpc * {scale} / pc) AS {d}) END) AS prec,
    SUM(CASE WHEN tc > 0 THEN CAST(ROUND(
        CAST(nd AS DOUBLE) * tpc * {scale} / tc) AS {d}) END) AS rec
FROM x
GROUP BY k
ORDER BY k
"""


def anchor_sums(
    con: duckdb.DuckDBPyConnection, cells: str, *, key: str | None = None, step: str
) -> list[dict[str, Any]]:
    """Sum the anonymous cells ``cells`` (a query) per value of ``key``.

    Parameters
    ----------
    con
        Evaluation connection.
    cells
        A query with the columns of the module docstring (and ``key``).
    key
        Column to group by; ``None`` sums all cells into one row (``k`` NULL).
    step
        Name for error messages.

    Returns
    -------
    list of dict
        One row per group (ordered by key), for :func:`anchor_block`; empty when
        ``cells`` has no rows.
    """
    sql = _SUMS_SQL.format(
        cells=cells, key=key or "CAST(NULL AS BIGINT)", d=DECIMAL_SUM, scale=BCUBED_SCALE
    )
    return engine.query(con, sql, step=step).to_pylist()


def anchor_block(row: dict[str, Any]) -> dict[str, Any]:
    """Drawbridge and CIKM Cup metrics (:data:`ANCHOR_KEYS`) from one row of sums."""
    devices, scored = to_int(row["devices"]), to_int(row["scored"])
    scored_predicted = to_int(row["scored_predicted"])
    tp, pred, true = (to_int(row[k]) // 2 for k in ("tp2", "pred2", "true2"))
    return {
        "devices": devices,
        "devices_scored": scored,
        "devices_without_true_cookie": devices - scored,
        "devices_with_predicted_cookie": to_int(row["predicted"]),
        "drawbridge_f0_5": ratio(to_int(row["f05"]), scored * BCUBED_SCALE),
        "drawbridge_precision": ratio(to_int(row["prec"]), scored_predicted * BCUBED_SCALE),
        "drawbridge_recall": ratio(to_int(row["rec"]), scored * BCUBED_SCALE),
        "pred_pairs": pred,
        "true_pairs": true,
        "tp_pairs": tp,
        "pair_precision": ratio(tp, pred),
        "pair_recall": ratio(tp, true),
        "pair_f1": f_beta(tp, pred - tp, true - tp, 1.0),
    }
