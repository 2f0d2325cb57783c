"""Core partition metrics: pairwise, B-cubed and cluster shape, computed in SQL.

Everything is derived from the contingency table of (predicted cluster, true entity)
with cell counts ``n``; pairs are never materialised, so the cost is O(records) even
when a matcher merges everything into one cluster (10M records -> 5e13 pairs).

One statement does the work. A single ``GROUPING SETS ((c, e), (c), (e))`` pass over
the joined records yields the cells, the cluster sizes and the entity sizes; the cells
are then joined to their cluster and entity sizes for B-cubed and the shape counts.
The SQL sticks to what DuckDB and Spark SQL both accept (``GROUPING SETS`` with
``GROUPING()``, ``CASE``, ``DECIMAL``; no engine-specific functions).

Definitions (``n`` a cell, ``|C|`` its cluster's size, ``|E|`` its entity's size,
``N`` the number of records):

- ``tp_pairs = sum over cells n(n-1)/2``, ``pred_pairs = sum over clusters``,
  ``true_pairs = sum over entities``, ``fp = pred - tp``, ``fn = true - tp``.
- ``precision = tp / pred_pairs``, ``recall = tp / true_pairs``,
  ``F_beta = (1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)``. F is defined from the counts
  (as scikit-learn does), so a prediction with no pairs at all has precision ``None``
  but F1 = 0 when there were true pairs to find.
- ``bcubed_precision = (1/N) sum over cells n^2 / |C|`` (the per-record average of the
  share of its cluster that is its own entity); ``bcubed_recall`` likewise with ``|E|``.
- An entity is resolved exactly when one cell is both its whole entity and its whole
  cluster.

Any ratio whose denominator is zero is ``None`` (never 0 or 1).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from bench.sql import engine

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "BCUBED_SCALE",
    "DECIMAL_SUM",
    "GROUPED_SQL",
    "METRICS",
    "EvaluationInputError",
    "MetricInfo",
    "evaluate",
    "evaluate_grouped",
    "f_beta",
    "harmonic",
    "ratio",
    "to_int",
]

log = logging.getLogger(__name__)

#: B-cubed terms n^2/|C| are summed as integers in units of 1e-18 (DECIMAL(38, 0)) so
#: that the result does not depend on the order in which threads add floating-point
#: numbers: the same partition always gives the same bits. Each term keeps a double's
#: relative precision (~1e-16); the sum is exact and fits DECIMAL(38, 0) up to 1e20 records.
BCUBED_SCALE = 10**18

#: SQL type of the exact integer sums (pair counts, scaled B-cubed terms) that every
#: metric module casts to before summing.
DECIMAL_SUM = "DECIMAL(38, 0)"


@dataclass(frozen=True)
class MetricInfo:
    """How to present one value returned by :func:`evaluate`.

    Parameters
    ----------
    label
        Short human-readable name for axes and table headers.
    direction
        ``"higher"`` or ``"lower"`` if that is better, ``"neutral"`` for plain counts
        and sizes that are neither good nor bad by themselves.
    description
        One sentence: what is counted or measured.
    """

    label: str
    direction: Literal["higher", "lower", "neutral"]
    description: str


#: Every key :func:`evaluate` returns, in its output order.
METRICS: dict[str, MetricInfo] = {
    # counts
    "n_records": MetricInfo("records", "neutral", "Records evaluated."),
    "n_clusters": MetricInfo("clusters", "neutral", "Predicted clusters."),
    "n_entities": MetricInfo("entities", "neutral", "True entities."),
    "pred_pairs": MetricInfo(
        "predicted pairs", "neutral", "Record pairs placed in the same predicted cluster."
    ),
    "true_pairs": MetricInfo(
        "true pairs", "neutral", "Record pairs that belong to the same true entity."
    ),
    "tp_pairs": MetricInfo(
        "true positive pairs", "higher", "Pairs in the same cluster and the same entity."
    ),
    "fp_pairs": MetricInfo(
        "false positive pairs", "lower", "Pairs in the same cluster but different entities."
    ),
    "fn_pairs": MetricInfo(
        "false negative pairs", "lower", "Pairs of the same entity split across clusters."
    ),
    # pairwise
    "precision": MetricInfo("pairwise precision", "higher", "tp_pairs / pred_pairs."),
    "recall": MetricInfo("pairwise recall", "higher", "tp_pairs / true_pairs."),
    "f1": MetricInfo("pairwise F1", "higher", "2 tp / (2 tp + fp + fn) over pairs."),
    "f0_5": MetricInfo(
        "pairwise F0.5",
        "higher",
        "1.25 tp / (1.25 tp + 0.25 fn + fp) over pairs; weights precision over recall.",
    ),
    # B-cubed
    "bcubed_precision": MetricInfo(
        "B-cubed precision",
        "higher",
        "Mean over records of the share of its cluster that belongs to its entity.",
    ),
    "bcubed_recall": MetricInfo(
        "B-cubed recall",
        "higher",
        "Mean over records of the share of its entity that lies in its cluster.",
    ),
    "bcubed_f1": MetricInfo(
        "B-cubed F1", "higher", "Harmonic mean of B-cubed precision and recall."
    ),
    # cluster shape
    "overmerged_clusters": MetricInfo(
        "over-merged clusters", "lower", "Clusters holding records of more than one entity."
    ),
    "split_entities": MetricInfo(
        "split entities", "lower", "Entities whose records are spread over several clusters."
    ),
    "exact_entities": MetricInfo(
        "exactly resolved entities",
        "higher",
        "Entities whose records form one cluster holding nothing else.",
    ),
    "exact_entity_share": MetricInfo(
        "share of entities resolved exactly", "higher", "exact_entities / n_entities."
    ),
    "cluster_entity_ratio": MetricInfo(
        "clusters per entity",
        "neutral",
        "n_clusters / n_entities: above 1 the matcher under-merges, below 1 it over-merges.",
    ),
    "largest_cluster": MetricInfo("largest cluster", "neutral", "Records in the largest cluster."),
    "largest_entity": MetricInfo("largest entity", "neutral", "Records of the largest entity."),
    "singleton_clusters": MetricInfo(
        "singleton clusters", "neutral", "Predicted clusters of exactly one record."
    ),
    "singleton_entities": MetricInfo(
        "singleton entities", "neutral", "True entities with exactly one record."
    ),
}


class EvaluationInputError(ValueError):
    """The clusters or truth given to :func:`evaluate` cannot be evaluated as they are."""


#: The joined records: one row per cluster record, ``c`` its cluster, ``e`` its entity
#: (NULL when the record is absent from the truth, which :func:`evaluate` reports).
_JOINED_SQL = """
SELECT k.cluster_id AS c, t.{entity} AS e
FROM {clusters} AS k
LEFT JOIN {truth} AS t ON k.record_id = t.record_id
"""

#: The single GROUPING SETS pass: cells (gc = 0, ge = 0), cluster sizes (gc = 0, ge = 1)
#: and entity sizes (gc = 1, ge = 0), each with its record count ``n``.
GROUPED_SQL = """
SELECT c, e, GROUPING(c) AS gc, GROUPING(e) AS ge, COUNT(*) AS n
FROM ({joined}) AS joined
GROUP BY GROUPING SETS ((c, e), (c), (e))
"""

#: The non-empty (cluster, entity) cells of ``grouped`` with their cluster and entity
#: sizes; a caller that already holds this table passes it instead (``cells=``).
_CELLS_SQL = """
SELECT x.n, cs.n AS nc, es.n AS ne
FROM grouped AS x
JOIN cluster_sizes AS cs ON x.c = cs.c
JOIN entity_sizes AS es ON x.e = es.e
WHERE x.gc = 0 AND x.ge = 0
"""

_STATS_SQL = """
WITH grouped AS ({grouped}),
cluster_sizes AS (SELECT c, n FROM grouped WHERE gc = 0 AND ge = 1),
entity_sizes AS (SELECT e, n FROM grouped WHERE gc = 1 AND ge = 0),
cells AS ({cells}),
cell_stats AS (
    SELECT
        SUM(CAST(n * (n - 1) AS DECIMAL(38, 0))) AS tp2,
        SUM(CAST(ROUND(CAST(n AS DOUBLE) * n * {scale} / nc) AS DECIMAL(38, 0))) AS bp,
        SUM(CAST(ROUND(CAST(n AS DOUBLE) * n * {scale} / ne) AS DECIMAL(38, 0))) AS br,
        SUM(CASE WHEN n = nc THEN 1 ELSE 0 END) AS pure_clusters,
        SUM(CASE WHEN n = ne THEN 1 ELSE 0 END) AS whole_entities,
        SUM(CASE WHEN n = nc AND n = ne THEN 1 ELSE 0 END) AS exact_entities
    FROM cells
),
cluster_stats AS (
    SELECT
        SUM(n) AS n_records,
        SUM(CASE WHEN c IS NULL THEN 0 ELSE 1 END) AS n_clusters,
        SUM(CASE WHEN c IS NULL THEN n ELSE 0 END) AS null_cluster_records,
        SUM(CAST(n * (n - 1) AS DECIMAL(38, 0))) AS pred2,
        MAX(n) AS largest_cluster,
        SUM(CASE WHEN n = 1 THEN 1 ELSE 0 END) AS singleton_clusters
    FROM cluster_sizes
),
entity_stats AS (
    SELECT
        SUM(CASE WHEN e IS NULL THEN 0 ELSE 1 END) AS n_entities,
        SUM(CASE WHEN e IS NULL THEN n ELSE 0 END) AS unmatched_records,
        SUM(CAST(n * (n - 1) AS DECIMAL(38, 0))) AS true2,
        MAX(n) AS largest_entity,
        SUM(CASE WHEN n = 1 THEN 1 ELSE 0 END) AS singleton_entities
    FROM entity_sizes
)
SELECT * FROM cell_stats CROSS JOIN cluster_stats CROSS JOIN entity_stats
"""


def to_int(value: int | Decimal | None) -> int:
    """An SQL integer aggregate as a Python int (SUM over no rows is NULL -> 0)."""
    return 0 if value is None else int(value)


def ratio(num: float, den: float) -> float | None:
    """``num / den``, or ``None`` when the denominator is zero."""
    return None if den == 0 else num / den


def f_beta(tp: int, fp: int, fn: int, beta: float) -> float | None:
    """F-beta from counts, ``None`` when there is nothing predicted and nothing true."""
    b2 = beta * beta
    return ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)


def harmonic(p: float | None, r: float | None) -> float | None:
    """Harmonic mean of a precision and a recall, ``None`` when either is unknown."""
    if p is None or r is None:
        return None
    return ratio(2 * p * r, p + r)


def _columns(con: duckdb.DuckDBPyConnection, name: str, role: str) -> set[str]:
    try:
        cols = engine.table_columns(con, name)
    except engine.SQLError as exc:
        msg = f"{role} table/view {name!r} cannot be read: {exc.__cause__}"
        raise EvaluationInputError(msg) from exc
    # DuckDB and Spark resolve unquoted identifiers case-insensitively.
    return {c.lower() for c in cols}


def _check_columns(
    con: duckdb.DuckDBPyConnection, name: str, role: str, required: tuple[str, ...]
) -> None:
    have = _columns(con, name, role)
    missing = [c for c in required if c.lower() not in have]
    if missing:
        msg = (
            f"{role} table/view {name!r} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(sorted(have))}"
        )
        raise EvaluationInputError(msg)


def _diagnose(
    con: duckdb.DuckDBPyConnection, clusters: str, truth: str, entity: str, n_bad: int
) -> str:
    """Explain why ``n_bad`` cluster records have no entity (only run on failure)."""
    k, t = engine.quote_ident(clusters), engine.quote_ident(truth)
    absent = (
        f"SELECT k.record_id FROM {k} AS k "
        f"WHERE NOT EXISTS (SELECT 1 FROM {t} AS t WHERE t.record_id = k.record_id)"
    )
    n_absent = engine.query_one(
        con, f"SELECT COUNT(*) AS n FROM ({absent}) AS a", step="evaluate: find absent records"
    )["n"]
    parts = []
    if n_absent:
        examples = engine.query(
            con,
            f"SELECT record_id FROM ({absent}) AS a ORDER BY record_id LIMIT 5",
            step="evaluate: list absent records",
        ).column("record_id")
        parts.append(
            f"{n_absent} record_id(s) of {clusters!r} are absent from {truth!r} "
            f"(e.g. {', '.join(map(str, examples.to_pylist()))}): a cluster output may only "
            "hold the dataset's own records"
        )
    n_null = n_bad - n_absent
    if n_null:
        parts.append(
            f"{n_null} record(s) of {clusters!r} have a NULL {entity!r} in {truth!r}: "
            f"give every record an entity (e.g. a view with COALESCE({entity}, -record_id) "
            "to make unknowns singletons) or evaluate at another level"
        )
    return "; ".join(parts)


def evaluate(
    con: duckdb.DuckDBPyConnection,
    clusters: str,
    truth: str,
    *,
    entity: str = "person_id",
) -> dict[str, Any]:
    """Pairwise, B-cubed and cluster-shape metrics of a predicted partition.

    Parameters
    ----------
    con
        Connection holding both tables/views.
    clusters
        Name of a table/view with columns ``record_id`` and ``cluster_id`` (any
        comparable type, e.g. BIGINT or VARCHAR): the predicted partition.
    truth
        Name of a table/view with ``record_id`` and the ``entity`` column (other
        columns, e.g. ``household_id``, are ignored).
    entity
        Truth column naming the true entity: ``"person_id"``, ``"household_id"``, ...

    Returns
    -------
    dict
        Flat and JSON-able, keys in the order of :data:`METRICS` (which describes each):
        counts (``n_records``, ``n_clusters``, ``n_entities``, ``pred_pairs``,
        ``true_pairs``, ``tp_pairs``, ``fp_pairs``, ``fn_pairs``), pairwise
        ``precision``, ``recall``, ``f1``, ``f0_5``, ``bcubed_precision``,
        ``bcubed_recall``, ``bcubed_f1`` and shape counts (``overmerged_clusters``,
        ``split_entities``, ``exact_entities``, ``exact_entity_share``, ...). Values
        are ``int``, ``float`` or ``None`` where a denominator is zero.

    Raises
    ------
    EvaluationInputError
        A table is missing or lacks a required column; a cluster record is absent from
        the truth or has a NULL entity; a ``cluster_id`` is NULL.

    Notes
    -----
    Assumes each ``record_id`` appears once in ``clusters`` and once in ``truth``, and
    that every truth record is in ``clusters`` (the runner checks completeness before
    calling this). Truth records missing from ``clusters`` are silently left out of
    every count; duplicated ``record_id`` are counted once per row. Cluster records
    absent from the truth are detected and raise.
    """
    _check_columns(con, clusters, "clusters", ("record_id", "cluster_id"))
    _check_columns(con, truth, "truth", ("record_id", entity))
    joined = _JOINED_SQL.format(
        clusters=engine.quote_ident(clusters),
        truth=engine.quote_ident(truth),
        entity=engine.quote_ident(entity),
    )
    return _evaluate_grouped_sql(
        con, GROUPED_SQL.format(joined=joined), clusters=clusters, truth=truth, entity=entity
    )


def evaluate_grouped(
    con: duckdb.DuckDBPyConnection,
    grouped: str,
    *,
    clusters: str,
    truth: str,
    entity: str = "person_id",
    cells: str | None = None,
) -> dict[str, Any]:
    """:func:`evaluate` from an already computed GROUPING SETS table.

    Lets a caller that needs the contingency table for further metrics (see
    :mod:`bench.metrics.evaluate`) run the one expensive pass once.

    Parameters
    ----------
    con
        Connection holding the tables.
    grouped
        Table/view with the columns of :data:`GROUPED_SQL` (``c``, ``e``, ``gc``, ``ge``,
        ``n``), computed from ``clusters`` LEFT JOIN ``truth``.
    clusters, truth, entity
        What ``grouped`` was computed from; only read to explain invalid input.
    cells
        Optional table of the non-empty cells of ``grouped`` with columns ``n``,
        ``nc``, ``ne`` (records in the cell, its cluster and its entity), when the
        caller has built it already (``ev_cells_<level>`` of
        :mod:`bench.metrics.tables`); by default the cells are joined here.

    Returns
    -------
    dict
        Exactly what :func:`evaluate` returns for the same inputs.
    """
    return _evaluate_grouped_sql(
        con,
        f"SELECT c, e, gc, ge, n FROM {engine.quote_ident(grouped)}",
        clusters=clusters,
        truth=truth,
        entity=entity,
        cells_sql=None if cells is None else f"SELECT n, nc, ne FROM {engine.quote_ident(cells)}",
    )


def _evaluate_grouped_sql(
    con: duckdb.DuckDBPyConnection,
    grouped_sql: str,
    *,
    clusters: str,
    truth: str,
    entity: str,
    cells_sql: str | None = None,
) -> dict[str, Any]:
    sql = _STATS_SQL.format(grouped=grouped_sql, cells=cells_sql or _CELLS_SQL, scale=BCUBED_SCALE)
    started = time.perf_counter()
    row = engine.query_one(con, sql, step=f"evaluate {clusters} against {truth}.{entity}")
    log.debug(
        "evaluate %s vs %s.%s: %.3f s", clusters, truth, entity, time.perf_counter() - started
    )

    n_bad = to_int(row["unmatched_records"])
    if n_bad:
        msg = "cannot evaluate: " + _diagnose(con, clusters, truth, entity, n_bad)
        raise EvaluationInputError(msg)
    n_null_cluster = to_int(row["null_cluster_records"])
    if n_null_cluster:
        msg = (
            f"cannot evaluate: {n_null_cluster} record(s) of {clusters!r} have a NULL "
            "cluster_id; give every record a cluster (a singleton if unmatched)"
        )
        raise EvaluationInputError(msg)

    n = to_int(row["n_records"])
    n_clusters = to_int(row["n_clusters"])
    n_entities = to_int(row["n_entities"])
    # n(n-1) is always even, so halving the sums is exact.
    tp = to_int(row["tp2"]) // 2
    pred = to_int(row["pred2"]) // 2
    true = to_int(row["true2"]) // 2
    fp, fn = pred - tp, true - tp
    bp = ratio(to_int(row["bp"]), n * BCUBED_SCALE)
    br = ratio(to_int(row["br"]), n * BCUBED_SCALE)
    exact = to_int(row["exact_entities"])
    out: dict[str, Any] = {
        "n_records": n,
        "n_clusters": n_clusters,
        "n_entities": n_entities,
        "pred_pairs": pred,
        "true_pairs": true,
        "tp_pairs": tp,
        "fp_pairs": fp,
        "fn_pairs": fn,
        "precision": ratio(tp, pred),
        "recall": ratio(tp, true),
        "f1": f_beta(tp, fp, fn, 1.0),
        "f0_5": f_beta(tp, fp, fn, 0.5),
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f1": harmonic(bp, br),
        "overmerged_clusters": n_clusters - to_int(row["pure_clusters"]),
        "split_entities": n_entities - to_int(row["whole_entities"]),
        "exact_entities": exact,
        "exact_entity_share": ratio(exact, n_entities),
        "cluster_entity_ratio": ratio(n_clusters, n_entities),
        "largest_cluster": None if row["largest_cluster"] is None else int(row["largest_cluster"]),
        "largest_entity": None if row["largest_entity"] is None else int(row["largest_entity"]),
        "singleton_clusters": to_int(row["singleton_clusters"]),
        "singleton_entities": to_int(row["singleton_entities"]),
    }
    return out
