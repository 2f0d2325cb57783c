"""False and missed merges attributed to the hazards the generator planted.

``truth/hazards.parquet`` tags records (long form: ``record_id, hazard``; a record may
carry several tags). Errors are counted per tag without enumerating pairs, from the
cells of the contingency table.

Definitions, for a record ``r`` in cell (cluster ``C``, entity ``E``) holding ``n``
records (``|C|`` and ``|E|`` the cluster and entity sizes) and ``R_h`` the records
tagged ``h``:

- ``false_partners(r) = |C| - n``: records sharing ``r``'s cluster but not its entity;
  ``missed_partners(r) = |E| - n``: records of ``r``'s entity outside its cluster.
- ``false_merge_partners = sum over r in R_h of false_partners(r)`` and
  ``missed_merge_partners`` likewise: ordered (tagged record, partner) pairs.
- ``false_merge_pairs``: unordered false-merge pairs (same cluster, different entity)
  with *at least one* record tagged ``h``. A pair with both records tagged appears
  twice in the partner sum, so ``false_merge_pairs = false_merge_partners - both``,
  where ``both = sum over clusters C of (K_C^2 - sum over cells k^2) / 2`` with ``k``
  the tagged records of a cell and ``K_C`` those of the cluster (the false pairs among
  tagged records). ``missed_merge_pairs`` likewise with entities in place of clusters.
  All from the tagged records joined to ``ev_base`` once: O(tagged records).
- ``false_merge_share = false_merge_pairs / all false-merge pairs`` (likewise
  ``missed_merge_share``). A pair touching two tags counts under both, so shares over
  tags may sum to more than 1.
- ``records_falsely_merged`` / ``records_missing_partners``: tagged records with at
  least one false / missed partner; ``*_per_record``: the partner sums over ``records``.

The row ``hazard = "(all)"`` applies the same definitions to every record (its pair
counts are the partition's fp and fn pairs): the baseline a tag's rates compare with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bench.metrics.core import DECIMAL_SUM, EvaluationInputError, ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["ALL", "hazard_metrics"]

log = logging.getLogger(__name__)

#: Tag of the baseline row over all records.
ALL = "(all)"

# The tagged records joined to ev_base once, for every level.
_TAGGED_SQL = """
CREATE OR REPLACE TEMP TABLE ev_hazard_tagged AS
SELECT h.hazard, b.c, {keys}
FROM (SELECT DISTINCT record_id, hazard FROM {hazards} WHERE hazard IS NOT NULL) AS h
JOIN {base} AS b ON h.record_id = b.record_id
"""

# Per level, the tagged counts k of each (hazard, cell), (hazard, cluster) and
# (hazard, entity), each a GROUP BY of its own (cheaper here than materialising the
# GROUPING SETS of all levels).
_SQL = """
WITH per_cell AS (
    SELECT
        g.hazard,
        SUM(g.k) AS records,
        SUM(CAST(g.k * (x.nc - x.n) AS {d})) AS false_partners,
        SUM(CAST(g.k * (x.ne - x.n) AS {d})) AS missed_partners,
        SUM(CASE WHEN x.nc > x.n THEN g.k ELSE 0 END) AS records_false,
        SUM(CASE WHEN x.ne > x.n THEN g.k ELSE 0 END) AS records_missed,
        SUM(CAST(g.k * g.k AS {d})) AS sq_cells
    FROM (
        SELECT hazard, c, {entity} AS e, COUNT(*) AS k FROM ev_hazard_tagged
        GROUP BY hazard, c, {entity}
    ) AS g
    JOIN {cells} AS x ON g.c = x.c AND g.e = x.e
    GROUP BY g.hazard
),
per_cluster AS (
    SELECT hazard, SUM(CAST(k * k AS {d})) AS sq_clusters
    FROM (SELECT hazard, c, COUNT(*) AS k FROM ev_hazard_tagged GROUP BY hazard, c) AS g
    GROUP BY hazard
),
per_entity AS (
    SELECT hazard, SUM(CAST(k * k AS {d})) AS sq_entities
    FROM (
        SELECT hazard, {entity} AS e, COUNT(*) AS k FROM ev_hazard_tagged
        GROUP BY hazard, {entity}
    ) AS g
    GROUP BY hazard
)
SELECT p.*, pc.sq_clusters, pe.sq_entities
FROM per_cell AS p
JOIN per_cluster AS pc ON p.hazard = pc.hazard
JOIN per_entity AS pe ON p.hazard = pe.hazard
ORDER BY p.hazard
"""

# Over all records every record is "tagged", so K_C = |C| and K_E = |E|:
# sum over clusters |C|^2 = sum over cells n |C|, and likewise for entities.
_ALL_SQL = """
SELECT
    SUM(n) AS records,
    SUM(CAST(n * (nc - n) AS {d})) AS false_partners,
    SUM(CAST(n * (ne - n) AS {d})) AS missed_partners,
    SUM(CASE WHEN nc > n THEN n ELSE 0 END) AS records_false,
    SUM(CASE WHEN ne > n THEN n ELSE 0 END) AS records_missed,
    SUM(CAST(n * n AS {d})) AS sq_cells,
    SUM(CAST(n * nc AS {d})) AS sq_clusters,
    SUM(CAST(n * ne AS {d})) AS sq_entities
FROM {cells}
"""


def _row(
    hazard: str, r: Mapping[str, Any], fp_pairs: int, fn_pairs: int, level: str
) -> dict[str, Any]:
    records = to_int(r["records"])
    fpart, mpart = to_int(r["false_partners"]), to_int(r["missed_partners"])
    sq = to_int(r["sq_cells"])
    # (K^2 - sum k^2) is twice the number of cross-entity pairs among tagged records.
    false_both = (to_int(r["sq_clusters"]) - sq) // 2
    missed_both = (to_int(r["sq_entities"]) - sq) // 2
    false_pairs, missed_pairs = fpart - false_both, mpart - missed_both
    return {
        "level": level,
        "hazard": hazard,
        "records": records,
        "false_merge_partners": fpart,
        "missed_merge_partners": mpart,
        "false_merge_pairs": false_pairs,
        "missed_merge_pairs": missed_pairs,
        "false_merge_share": ratio(false_pairs, fp_pairs),
        "missed_merge_share": ratio(missed_pairs, fn_pairs),
        "records_falsely_merged": to_int(r["records_false"]),
        "records_missing_partners": to_int(r["records_missed"]),
        "false_partners_per_record": ratio(fpart, records),
        "missed_partners_per_record": ratio(mpart, records),
    }


def hazard_metrics(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
    hazards: str,
    core: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Error counts per hazard tag and level (definitions in the module docstring).

    Parameters
    ----------
    con, tables
        The evaluation connection and tables.
    hazards
        Table/view with ``record_id`` and ``hazard``.
    core
        Level -> partition metrics (for the fp / fn pair totals).

    Returns
    -------
    list of dict
        One row per level and tag (the ``"(all)"`` baseline first, then tags sorted),
        keys ``level``, ``hazard``, ``records``, ``false_merge_partners``,
        ``missed_merge_partners``, ``false_merge_pairs``, ``missed_merge_pairs``,
        ``false_merge_share``, ``missed_merge_share``, ``records_falsely_merged``,
        ``records_missing_partners``, ``false_partners_per_record``,
        ``missed_partners_per_record``.

    Raises
    ------
    EvaluationInputError
        ``hazards`` lacks ``record_id`` or ``hazard``.
    """
    have = {c.lower() for c in engine.table_columns(con, hazards)}
    missing = [c for c in ("record_id", "hazard") if c not in have]
    if missing:
        msg = (
            f"hazard table {hazards!r} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(sorted(have))} (expected long form: record_id, hazard)"
        )
        raise EvaluationInputError(msg)
    cols = {lv: engine.quote_ident(LEVELS[lv]) for lv in tables.levels}
    engine.execute(
        con,
        _TAGGED_SQL.format(
            hazards=engine.quote_ident(hazards),
            base=tables.base,
            keys=", ".join(f"b.{col}" for col in cols.values()),
        ),
        step="evaluation: hazard records",
    )
    out: list[dict[str, Any]] = []
    for level in tables.levels:
        fp, fn = core[level]["fp_pairs"], core[level]["fn_pairs"]
        cells = tables.cells(level)
        base_row = engine.query_one(
            con,
            _ALL_SQL.format(cells=cells, d=DECIMAL_SUM),
            step=f"evaluation: hazard baseline ({level})",
        )
        out.append(_row(ALL, base_row, fp, fn, level))
        rows = engine.query(
            con,
            _SQL.format(
                cells=cells,
                entity=cols[level],
                d=DECIMAL_SUM,
            ),
            step=f"evaluation: hazards ({level})",
        ).to_pylist()
        out.extend(_row(str(r["hazard"]), r, fp, fn, level) for r in rows)
    return out
