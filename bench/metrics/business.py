"""Business impact: the questions a CDP exists to answer, per truth level.

Definitions (an *entity* is a person at person level, a household at household level):

- ``entity_count_inflation = predicted clusters / true entities`` (above 1: the
  customer base looks bigger than it is; below 1: customers were merged).
- ``wrong_entity_records``: records not belonging to their cluster's majority entity
  (the entity with the most records in the cluster); ``wrong_entity_share`` divides by
  all records. The count does not depend on how ties for the majority are broken.
- Top-k high-value customers: each entity's value is the sum of its records'
  ``amount`` (NULL counts 0); the true top-k are the ``k`` entities of highest positive
  value (ties: smaller entity id). Clusters are ranked the same way by the summed
  amount of their records (ties: smaller cluster id), the top ``k`` clusters of
  positive value are taken and each is mapped to its majority entity (most records;
  ties: smaller entity id). ``top_k_found`` counts true top-k entities that are the
  majority entity of some top cluster and ``top_k_recall = top_k_found /
  top_k_effective``, where ``top_k_effective = min(k, entities with positive value)``.
  ``top_k_distinct_entities`` counts distinct majority entities among the top clusters:
  below the number of top clusters means a valuable customer was split into several
  "customers". ``None`` when the records have no ``amount``.
- ``cost_thresholds`` (from :func:`bench.metrics.pairs.cost_thresholds`, matchers that
  emit scored pairs only): the pair-score threshold minimising ``C * fp + fn`` for a
  false merge costing ``C`` missed merges.

Amounts are summed as exact decimals, so rankings do not depend on summation order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bench.metrics.core import ratio, to_int
from bench.metrics.tables import LEVELS, EvalTables
from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = ["DEFAULT_TOP_K", "business_metrics"]

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 100

_TOP_K_SQL = """
WITH ent AS (
    SELECT {entity} AS e, SUM(amount) AS amt FROM {base}
    WHERE amount IS NOT NULL GROUP BY {entity}
),
true_top AS (SELECT e FROM ent WHERE amt > 0 ORDER BY amt DESC, e LIMIT {k}),
top_clusters AS (SELECT c FROM ev_top_clusters),
majority AS (
    SELECT c, e FROM (
        SELECT x.c, x.e, ROW_NUMBER() OVER (PARTITION BY x.c ORDER BY x.n DESC, x.e) AS rn
        FROM {cells} AS x JOIN top_clusters AS t ON x.c = t.c
    ) AS ranked
    WHERE rn = 1
)
SELECT
    (SELECT COUNT(*) FROM true_top) AS k_true,
    (SELECT COUNT(*) FROM top_clusters) AS k_clusters,
    (SELECT COUNT(DISTINCT e) FROM majority) AS distinct_entities,
    (SELECT COUNT(*) FROM true_top WHERE e IN (SELECT e FROM majority)) AS found
"""

# The top clusters do not depend on the level: ranked once for all levels.
_TOP_CLUSTERS_SQL = """
CREATE OR REPLACE TABLE ev_top_clusters AS
SELECT c FROM (
    SELECT c, SUM(amount) AS amt FROM {base} WHERE amount IS NOT NULL GROUP BY c
) AS clu
WHERE amt > 0 ORDER BY amt DESC, c LIMIT {k}
"""

_WRONG_SQL = """
SELECT SUM(m) AS majority_records
FROM (SELECT c, MAX(n) AS m FROM {cells} GROUP BY c) AS per_cluster
"""


def business_metrics(
    con: duckdb.DuckDBPyConnection,
    tables: EvalTables,
    core: Mapping[str, Mapping[str, Any]],
    *,
    top_k: int = DEFAULT_TOP_K,
    cost: Mapping[str, list[dict[str, Any]] | None] | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Entity-count inflation, wrong-entity share, top-k recall and cost thresholds.

    Parameters
    ----------
    con, tables
        The evaluation connection and tables.
    core
        Level -> partition metrics (cluster and entity counts).
    top_k
        How many high-value entities to look for.
    cost
        Level -> cost-weighted threshold choices, when the matcher emitted pairs.

    Returns
    -------
    dict
        Level -> ``{"n_clusters", "n_entities", "entity_count_inflation",
        "wrong_entity_records", "wrong_entity_share", "top_k", "top_k_effective",
        "top_k_found", "top_k_recall", "top_k_clusters", "top_k_distinct_entities",
        "cost_thresholds"}`` (``None`` for a missing level).
    """
    if top_k < 1:
        msg = f"top_k must be at least 1, got {top_k}"
        raise ValueError(msg)
    out: dict[str, dict[str, Any] | None] = dict.fromkeys(LEVELS)
    if tables.has_amount:
        engine.execute(
            con,
            _TOP_CLUSTERS_SQL.format(base=tables.base, k=int(top_k)),
            step=f"evaluation: top-{top_k} clusters",
        )
    for level in tables.levels:
        m = core[level]
        cells = tables.cells(level)
        n = m["n_records"]
        majority = to_int(
            engine.query_one(
                con, _WRONG_SQL.format(cells=cells), step=f"evaluation: majority ({level})"
            )["majority_records"]
        )
        block: dict[str, Any] = {
            "n_clusters": m["n_clusters"],
            "n_entities": m["n_entities"],
            "entity_count_inflation": ratio(m["n_clusters"], m["n_entities"]),
            "wrong_entity_records": n - majority,
            "wrong_entity_share": ratio(n - majority, n),
            "top_k": top_k,
            "top_k_effective": None,
            "top_k_found": None,
            "top_k_recall": None,
            "top_k_clusters": None,
            "top_k_distinct_entities": None,
        }
        if tables.has_amount:
            r = engine.query_one(
                con,
                _TOP_K_SQL.format(
                    base=tables.base,
                    cells=cells,
                    entity=engine.quote_ident(LEVELS[level]),
                    k=int(top_k),
                ),
                step=f"evaluation: top-{top_k} customers ({level})",
            )
            k_true = to_int(r["k_true"])
            block.update(
                top_k_effective=k_true,
                top_k_found=to_int(r["found"]),
                top_k_recall=ratio(to_int(r["found"]), k_true),
                top_k_clusters=to_int(r["k_clusters"]),
                top_k_distinct_entities=to_int(r["distinct_entities"]),
            )
        block["cost_thresholds"] = None if cost is None else cost.get(level)
        out[level] = block
    return out
