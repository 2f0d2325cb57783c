"""Evidence ceilings: how many true anonymous pairs any matcher could reach at all.

A property of the dataset, not of a run: given only the evidence the matchers see, what
share of the true pairs of anonymous identifiers (two cookie / ad id records of one
person) is linked by it? A matcher's anonymous recall (``anonymous.pair_recall``) is
judged against these, not against 1.

Population: the records whose ``source`` is anonymous
(:data:`bench.metrics.tables.ANONYMOUS_SOURCES`), with person truth; ``true_pairs`` are
their same-person pairs. Evidence: ``tables/identifier_ip`` (one row per identifier and
IP with first / last time seen).

``direct_pairs``
    true pairs whose two identifiers were both seen on at least one common IP.
``direct_near_pairs``
    true pairs seen on a common IP within ``near_days`` days of each other: on that IP,
    the gap between their sightings (``max(first) - min(last)``; negative when they
    overlap) is at most ``near_days`` days.
``closure_pairs``
    true pairs reachable by closure: in one connected component of the shared-IP graph
    restricted to one person (identifiers linked when they share an IP, and then
    transitively). The largest recall a matcher that only links through shared IPs
    could reach without a single false merge.

Each comes with its ``*_share`` of ``true_pairs``. Memory stays bounded by what is
counted: only identifiers of one person on one IP are paired (a CGNAT address shared
by thousands of identifiers of hundreds of persons yields just the same-person pairs),
the direct pairs are at most the true pairs that share an IP, and the closure needs no
pairs at all: the identifiers of one person on one IP are linked as a star to the
smallest of them and the components counted (:func:`bench.sql.graph.connected_components`).

Cached: the direct pairs are the costly part (one row per such pair, ~1.6M on a 100k
record ``small`` dataset), and the value only depends on the dataset's bytes, so it is
computed once per dataset and kept in ``truth/ceilings.json`` beside the truth it is
derived from (never staged to a matcher), keyed by the dataset's fingerprint, the
parameters and :data:`CEILINGS_VERSION`. A read-only dataset is recomputed per run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.data.dataset import TRUTH_DIR, Dataset, write_json_atomic
from bench.metrics.core import ratio, to_int
from bench.metrics.tables import ANONYMOUS_SOURCES
from bench.sql import engine
from bench.sql.graph import connected_components

if TYPE_CHECKING:
    import duckdb

__all__ = ["CEILINGS_FILE", "CEILINGS_VERSION", "DEFAULT_NEAR_DAYS", "evidence_ceilings"]

log = logging.getLogger(__name__)

#: Cache file, under the dataset's ``truth/`` folder.
CEILINGS_FILE = "ceilings.json"

#: Bump when a definition changes, so cached values are recomputed.
CEILINGS_VERSION = 1

#: Days within which two sightings on one IP count as near (one observation window,
#: :data:`bench.metrics.windows.DEFAULT_WINDOW_DAYS`).
DEFAULT_NEAR_DAYS = 30

_IDS_SQL = """
CREATE OR REPLACE TEMP TABLE ceil_ids AS
SELECT r.record_id, t.person_id AS p
FROM read_parquet({records}) AS r JOIN read_parquet({truth}) AS t USING (record_id)
WHERE r.source IN ({anon})
"""

_IP_SQL = """
CREATE OR REPLACE TEMP TABLE ceil_ip AS
SELECT i.record_id, x.p, i.ip,
       CAST(i.first_seen AS TIMESTAMP) AS fs, CAST(i.last_seen AS TIMESTAMP) AS ls
FROM read_parquet({ip}) AS i JOIN ceil_ids AS x USING (record_id)
"""

# Pairs only within (person, IP): bounded by the same-person pairs that share an IP.
_DIRECT_SQL = """
SELECT count(*) AS direct, count(*) FILTER (WHERE near) AS near
FROM (
    SELECT a.record_id AS i, b.record_id AS j,
           bool_or(greatest(a.fs, b.fs) - least(a.ls, b.ls) <= INTERVAL {days} DAY) AS near
    FROM ceil_ip AS a JOIN ceil_ip AS b
      ON a.p = b.p AND a.ip = b.ip AND a.record_id < b.record_id
    GROUP BY a.record_id, b.record_id
)
"""

_CLOSURE_SQL = """
SELECT SUM(CAST(k AS HUGEINT) * (k - 1)) // 2 AS closure
FROM (
    SELECT count(*) AS k
    FROM ceil_ids AS x LEFT JOIN {labels} AS l ON l.node = x.record_id
    GROUP BY x.p, coalesce(l.label, x.record_id)
)
"""


def _compute(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, identifier_ip: Path, near_days: int
) -> dict[str, Any]:
    anon = ", ".join(engine.literal(s) for s in ANONYMOUS_SOURCES)
    engine.execute(
        con,
        _IDS_SQL.format(
            records=engine.literal(dataset.records_path),
            truth=engine.literal(dataset.truth_path),
            anon=anon,
        ),
        step="ceilings: anonymous identifiers",
    )
    engine.execute(con, _IP_SQL.format(ip=engine.literal(identifier_ip)), step="ceilings: evidence")
    counts = engine.query_one(
        con,
        "SELECT SUM(a) AS records, SUM(CAST(a AS HUGEINT) * (a - 1)) // 2 AS true_pairs, "
        "(SELECT count(DISTINCT record_id) FROM ceil_ip) AS with_ip "
        "FROM (SELECT count(*) AS a FROM ceil_ids GROUP BY p)",
        step="ceilings: true pairs",
    )
    direct = engine.query_one(
        con, _DIRECT_SQL.format(days=int(near_days)), step="ceilings: direct pairs"
    )
    star = "SELECT record_id AS a, min(record_id) OVER (PARTITION BY p, ip) AS b FROM ceil_ip"
    labels = connected_components(con, star, lambda name: f"ceil_{name}").table
    closure = engine.query_one(
        con, _CLOSURE_SQL.format(labels=engine.quote_ident(labels)), step="ceilings: closure"
    )
    for table in (labels, "ceil_ip", "ceil_ids"):
        engine.execute(con, f"DROP TABLE IF EXISTS {engine.quote_ident(table)}")
    true_pairs = to_int(counts["true_pairs"])
    out: dict[str, Any] = {
        "level": "person",
        "near_days": near_days,
        "anonymous_records": to_int(counts["records"]),
        "records_with_ip": to_int(counts["with_ip"]),
        "true_pairs": true_pairs,
    }
    for key, value in (
        ("direct", direct["direct"]),
        ("direct_near", direct["near"]),
        ("closure", closure["closure"]),
    ):
        out[f"{key}_pairs"] = to_int(value)
        out[f"{key}_share"] = ratio(to_int(value), true_pairs)
    return out


def _cache_key(dataset: Dataset, near_days: int) -> dict[str, Any]:
    return {"version": CEILINGS_VERSION, "fingerprint": dataset.fingerprint, "near_days": near_days}


def evidence_ceilings(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    *,
    near_days: int = DEFAULT_NEAR_DAYS,
    use_cache: bool = True,
) -> dict[str, Any] | None:
    """The evidence ceilings of ``dataset`` (definitions in the module docstring).

    Parameters
    ----------
    con
        A connection to compute in (its ``ceil_*`` temp tables are dropped after).
    dataset
        The dataset; its ``tables/identifier_ip.parquet`` is the evidence.
    near_days
        The ``direct_near`` gap limit, in days.
    use_cache
        Read and write ``truth/ceilings.json``.

    Returns
    -------
    dict or None
        ``None`` when the dataset has no ``identifier_ip`` table or no anonymous
        records; else ``{"level", "near_days", "anonymous_records", "records_with_ip",
        "true_pairs", "direct_pairs", "direct_share", "direct_near_pairs",
        "direct_near_share", "closure_pairs", "closure_share"}``.
    """
    identifier_ip = dataset.tables.get("identifier_ip")
    if identifier_ip is None:
        return None
    cache = dataset.root / TRUTH_DIR / CEILINGS_FILE
    key = _cache_key(dataset, near_days)
    if use_cache and cache.is_file():
        try:
            stored = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        if stored.get("key") == key:
            return stored["ceilings"]
    result = _compute(con, dataset, identifier_ip, near_days)
    ceilings = result if result["anonymous_records"] else None
    if use_cache:
        try:
            write_json_atomic(cache, {"key": key, "ceilings": ceilings}, allow_nan=False)
        except OSError as exc:
            log.info("ceilings of %s not cached (%s)", dataset.root, exc)
    return ceilings
