"""The anonymous task scored per observation window, as the public challenges framed it.

The Drawbridge (ICDM 2015) and CIKM Cup 2016 data each covered a few weeks of logs, so
their tasks only ever linked identifiers seen within those weeks. Over a year-long
horizon a few persons (serial cookie deleters) own most identifiers and most true pairs,
and pairs between identifiers months apart dominate the whole-horizon figures; scoring
windows of :data:`DEFAULT_WINDOW_DAYS` days puts the anchors' metrics back on the
challenges' footing.

**Activity.** An anonymous record (``ev_base.is_anon``) is *active* from its first to
its last sighting: ``min(first_seen)`` / ``max(last_seen)`` over its rows of
``tables/identifier_ip`` (the evidence a log of that time would hold); a record with no
such rows falls back to its ``records.ts`` (for the generator, the day it was set) as
both; a record with neither is in no window (``identifiers_without_activity``).

**Windows.** Consecutive windows of ``W`` days tile the horizon from midnight of the
first sighting: window ``k`` is ``[origin + kW, origin + (k+1)W)`` and covers the
records active in it (``first < end`` and ``last >= start``), so a long-lived identifier
is in every window it spans. The last window may be cut short by the horizon
(``full`` is false when it ends after the day of the last sighting).

**Metrics.** In each window both the predicted partition and the person truth are
restricted to the window's anonymous records and the anchors' metrics of
:mod:`bench.metrics.anchors` are computed on them: Drawbridge F0.5 per device, CIKM
pair precision / recall / F1 over the window's identifier pairs. ``mean`` is the
unweighted mean of each metric over the full windows with a value (over all windows
when none is full). Person truth only.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.metrics.anchors import anchor_block, anchor_sums
from bench.metrics.core import to_int
from bench.metrics.tables import EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["DEFAULT_WINDOW_DAYS", "MEAN_KEYS", "window_metrics"]

log = logging.getLogger(__name__)

#: Days per observation window: about a month, the span of the challenges' logs
#: (Drawbridge and CIKM Cup 2016 each released a few weeks of browsing).
DEFAULT_WINDOW_DAYS = 30

#: The metrics averaged over windows in ``mean``.
MEAN_KEYS: tuple[str, ...] = (
    "drawbridge_f0_5",
    "drawbridge_precision",
    "drawbridge_recall",
    "pair_precision",
    "pair_recall",
    "pair_f1",
)

_ACTIVITY_SQL = """
CREATE OR REPLACE TABLE ev_activity AS
SELECT b.record_id, b.c, b.person_id AS e, b.is_device,
       {fs} AS fs, {ls} AS ls
FROM (SELECT record_id, c, person_id, is_device FROM {base} WHERE is_anon) AS b
{ip_join}
{ts_join}
"""

_IP_JOIN = """LEFT JOIN (
    SELECT record_id, CAST(min(first_seen) AS TIMESTAMP) AS fs,
           CAST(max(last_seen) AS TIMESTAMP) AS ls
    FROM read_parquet({path}) GROUP BY record_id
) AS ip ON ip.record_id = b.record_id"""

# Per window k the records active in it, then the cells restricted to them.
_WINDOW_CELLS_SQL = """
CREATE OR REPLACE TABLE ev_window_cells AS
WITH span AS (
    SELECT c, e, is_device,
           date_diff('second', {origin}, fs) // {seconds} AS k0,
           date_diff('second', {origin}, ls) // {seconds} AS k1
    FROM ev_activity WHERE fs IS NOT NULL
),
w AS (SELECT unnest(range(k0, k1 + 1)) AS k, c, e, is_device FROM span),
cell AS (
    SELECT k, c, e, COUNT(*) AS n, COUNT(*) FILTER (WHERE is_device) AS nd
    FROM w GROUP BY k, c, e
)
SELECT x.k, x.n, x.nd, cs.n AS nc, cs.nd AS ncd, es.n AS ne, es.nd AS ned
FROM cell AS x
JOIN (SELECT k, c, SUM(n) AS n, SUM(nd) AS nd FROM cell GROUP BY k, c) AS cs
  ON cs.k = x.k AND cs.c = x.c
JOIN (SELECT k, e, SUM(n) AS n, SUM(nd) AS nd FROM cell GROUP BY k, e) AS es
  ON es.k = x.k AND es.e = x.e
"""


def _build_activity(
    con: duckdb.DuckDBPyConnection, tables: EvalTables, identifier_ip: Path | None
) -> str:
    """Create ``ev_activity``; return where the activity came from (for the record)."""
    has_ts = "ts" in {c.lower() for c in engine.table_columns(con, "records")}
    ts = "CAST(r.ts AS TIMESTAMP)" if has_ts else "CAST(NULL AS TIMESTAMP)"
    ts_join = "LEFT JOIN records AS r ON r.record_id = b.record_id" if has_ts else ""
    fs, ls, ip_join = ts, ts, ""
    if identifier_ip is not None:
        fs, ls = f"coalesce(ip.fs, {ts})", f"coalesce(ip.ls, {ts})"
        ip_join = _IP_JOIN.format(path=engine.literal(identifier_ip))
    engine.execute(
        con,
        _ACTIVITY_SQL.format(base=tables.base, fs=fs, ls=ls, ip_join=ip_join, ts_join=ts_join),
        step="evaluation: anonymous activity",
    )
    sources = (["identifier_ip first_seen/last_seen"] if identifier_ip else []) + (
        ["records.ts"] if has_ts else []
    )
    return ", else ".join(sources) or "none"


def _mean(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    full = [r for r in rows if r["full"]] or rows
    out: dict[str, float | None] = {}
    for key in MEAN_KEYS:
        values = [r[key] for r in full if r[key] is not None]
        out[key] = sum(values) / len(values) if values else None
    return out


def window_metrics(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
    *,
    identifier_ip: Path | None,
    window_days: int = DEFAULT_WINDOW_DAYS,
) -> dict[str, Any] | None:
    """The anchors' metrics per observation window of ``window_days`` days (person truth).

    Parameters
    ----------
    con
        Evaluation connection with ``ev_base`` and the view ``records``.
    tables
        What :func:`bench.metrics.tables.build_base` built.
    identifier_ip
        The dataset's ``tables/identifier_ip.parquet`` (first / last seen per identifier
        and IP), or ``None`` when it has none.
    window_days
        Window length in days (positive).

    Returns
    -------
    dict or None
        ``None`` without anonymous records or without any activity; else
        ``{"window_days", "level", "activity", "identifiers", "identifiers_without_activity",
        "windows", "mean", "mean_over"}``: ``windows`` a list of rows ``{"window",
        "start", "end", "full", "identifiers"}`` plus the keys of
        :data:`bench.metrics.anchors.ANCHOR_KEYS`; ``mean`` the means of
        :data:`MEAN_KEYS` over ``mean_over`` windows (see the module docstring).
    """
    if window_days <= 0:
        msg = f"window_days must be positive, got {window_days}"
        raise ValueError(msg)
    if tables.n_anonymous == 0:
        return None
    activity = _build_activity(con, tables, identifier_ip)
    span = engine.query_one(
        con,
        "SELECT date_trunc('day', min(fs)) AS origin, max(ls) AS last, "
        "count(*) FILTER (WHERE fs IS NULL) AS idle FROM ev_activity",
        step="evaluation: anonymous horizon",
    )
    if span["origin"] is None:
        return None
    origin: dt.datetime = span["origin"]
    seconds = window_days * 86_400
    engine.execute(
        con,
        _WINDOW_CELLS_SQL.format(
            origin=f"TIMESTAMP '{origin.isoformat(sep=' ')}'", seconds=seconds
        ),
        step="evaluation: window cells",
    )
    horizon_end = dt.datetime.combine(span["last"].date(), dt.time()) + dt.timedelta(days=1)
    rows = []
    sums = anchor_sums(con, "SELECT * FROM ev_window_cells", key="k", step="evaluation: windows")
    for s in sums:
        start = origin + dt.timedelta(days=window_days * s["k"])
        end = start + dt.timedelta(days=window_days)
        rows.append(
            {
                "window": int(s["k"]),
                "start": start.date().isoformat(),
                "end": end.date().isoformat(),
                "full": end <= horizon_end,
                "identifiers": to_int(s["records"]),
                **anchor_block(s),
            }
        )
    full = [r for r in rows if r["full"]] or rows
    return {
        "window_days": window_days,
        "level": "person",
        "activity": activity,
        "identifiers": tables.n_anonymous,
        "identifiers_without_activity": to_int(span["idle"]),
        "windows": rows,
        "mean": _mean(rows),
        "mean_over": len(full),
    }
