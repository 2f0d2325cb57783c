"""Evaluate one run's stored raw outputs against its dataset's truth.

Runs after the matcher has finished, in a connection of its own: the truth never shares
a connection with a matcher. Used by the run worker and by ``idbench run --recompute``,
so metrics can be re-derived from raw outputs after a metric fix.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench import engine, metrics
from bench.dataset import Dataset

__all__ = ["evaluate_run", "partition_checksum"]

log = logging.getLogger(__name__)


def partition_checksum(con, clusters: str) -> str:
    """A checksum of the partition that ignores how clusters are labelled.

    Each record is paired with the smallest record id of its cluster; the hashes of
    those pairs are summed, so row order and cluster labels do not matter.
    """
    row = engine.query_one(
        con,
        f"""
        SELECT CAST(sum(CAST(hash(record_id, rep) AS HUGEINT)) AS VARCHAR) AS chk
        FROM (SELECT record_id, min(record_id) OVER (PARTITION BY cluster_id) AS rep
              FROM {engine.quote_ident(clusters)})
        """,
        step="partition checksum",
    )
    return str(row["chk"])


def evaluate_run(raw_dir: str | Path, dataset: Dataset, *, threads: int = 2) -> dict[str, Any]:
    """Metrics of the clusters in ``raw_dir`` at person and (if known) household level.

    Returns
    -------
    dict
        ``{"person": {...}, "household": {...} | None, "output": {...}}``
    """
    raw_dir = Path(raw_dir)
    con = engine.connect(threads=threads)
    try:
        engine.register_parquet(con, "clusters", raw_dir / "clusters.parquet")
        engine.register_parquet(con, "truth", dataset.truth_path)
        result: dict[str, Any] = {
            "person": metrics.evaluate(con, "clusters", "truth", entity="person_id")
        }
        has_household = (
            "household_id" in engine.table_columns(con, "truth")
            and engine.query_one(
                con,
                "SELECT count(household_id) AS n FROM truth",
                step="household truth",
            )["n"]
        )
        result["household"] = None
        if has_household:
            # A record without a known household is its own household.
            engine.execute(
                con,
                "CREATE VIEW household_truth AS SELECT record_id, "
                "coalesce(household_id, -1 - record_id) AS household_id FROM truth",
                step="household truth",
            )
            result["household"] = metrics.evaluate(
                con, "clusters", "household_truth", entity="household_id"
            )
        out = engine.query_one(
            con,
            "SELECT count(*) AS n_records, count(DISTINCT cluster_id) AS n_clusters FROM clusters",
            step="output summary",
        )
        out["checksum"] = partition_checksum(con, "clusters")
        pairs = raw_dir / "pairs.parquet"
        if pairs.is_file():
            engine.register_parquet(con, "pairs", pairs)
            out["n_pairs"] = engine.query_one(
                con, "SELECT count(*) AS n FROM pairs", step="pairs summary"
            )["n"]
        result["output"] = out
        return result
    finally:
        con.close()
