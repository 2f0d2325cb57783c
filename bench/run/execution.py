"""Running one matcher on one set of inputs, in-process: load, fit, match, materialise.

Shared by the run worker (one run in its own process) and the conformance suite. The
matcher sees a fresh connection holding the records and auxiliary tables as read-only
views over harness-owned tables; of the truth only a supervised matcher's training
labels (``labels``) are loaded here, never the truth files.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.api import (
    CLUSTER_COLUMNS,
    PAIR_COLUMNS,
    MatchContext,
    Matcher,
    MatchResult,
    NoDuckDB,
)
from bench.sql import engine
from bench.sql.interface import Engine

__all__ = [
    "INPUT_PREFIX",
    "MalformedOutput",
    "Outcome",
    "load_inputs",
    "run_matcher",
    "validate_clusters",
    "validate_pairs",
]

log = logging.getLogger(__name__)

#: Harness-owned tables behind the views a matcher sees.
INPUT_PREFIX = "__idbench_in_"
RECORDS_VIEW = "records"


class MalformedOutput(ValueError):
    """A matcher returned clusters or pairs that break the contract."""


@dataclass
class Outcome:
    """What one in-process execution produced, fully materialised."""

    clusters: pa.Table
    pairs: pa.Table | None
    diagnostics: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


Source = str | Path | pa.Table


def _load_one(con: engine.Target, name: str, source: Source) -> None:
    table = INPUT_PREFIX + name
    if isinstance(source, str | Path):
        engine.register_parquet(con, table, source, as_table=True)
    else:
        engine.register_arrow(con, f"{table}_arrow", source)
        engine.execute(
            con,
            f"CREATE OR REPLACE TABLE {engine.quote_ident(table)} AS "
            f"SELECT * FROM {engine.quote_ident(table + '_arrow')}",
            step=f"load {name}",
        )
        if isinstance(con, Engine):
            con.drop(f"{table}_arrow")
        else:
            con.unregister(f"{table}_arrow")
    engine.execute(
        con,
        f"CREATE OR REPLACE VIEW {engine.quote_ident(name)} AS "
        f"SELECT * FROM {engine.quote_ident(table)}",
        step=f"expose {name}",
    )


def load_inputs(
    con: engine.Target,
    records: Source,
    tables: Mapping[str, Source] | None = None,
    *,
    seed: int = 0,
    threads: int = 1,
    labels: Source | None = None,
) -> MatchContext:
    """Load records and auxiliary tables into ``con``; return the matcher's context.

    Parameters
    ----------
    con
        A DuckDB connection, or an engine (:class:`~bench.sql.interface.Engine`): on
        another engine than DuckDB the context's ``con`` is a :class:`~bench.api.NoDuckDB`
        stand-in.
    records
        Parquet path or Arrow table of the records to resolve.
    tables
        Auxiliary inputs by logical name (Parquet path or Arrow table).
    labels
        Training sample ``(record_id, entity_id)`` for matchers tagged ``needs_labels``.
    """
    _load_one(con, RECORDS_VIEW, records)
    views = {}
    for name, src in (tables or {}).items():
        _load_one(con, name, src)
        views[name] = name
    if labels is not None:
        _load_one(con, "labels", labels)
    run_engine = con if isinstance(con, Engine) else None
    raw = getattr(con, "con", None) if isinstance(con, Engine) else con
    return MatchContext(
        con=raw if raw is not None else NoDuckDB(con.kind),
        engine=run_engine,
        records=RECORDS_VIEW,
        tables=views,
        seed=seed,
        labels="labels" if labels is not None else None,
        threads=threads,
    )


def _as_table(con: engine.Target, output: Any, what: str) -> pa.Table:
    table = engine.materialise(con, output, step=f"materialise {what}")
    if not isinstance(table, pa.Table):  # pragma: no cover - materialise guarantees it
        msg = f"{what}: expected a table, got {type(table).__name__}"
        raise MalformedOutput(msg)
    return table


def run_matcher(matcher: Matcher, ctx: MatchContext) -> Outcome:
    """Fit and match, materialising the output inside the timed ``match`` phase."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fitted = matcher.fit(ctx)
    timings["fit"] = time.perf_counter() - t0
    if fitted is None:
        fitted = matcher  # tolerate fit() that forgot to return self
    t0 = time.perf_counter()
    result = fitted.match(ctx)
    if not isinstance(result, MatchResult):
        msg = f"match() must return a MatchResult, got {type(result).__name__}"
        raise MalformedOutput(msg)
    clusters = _as_table(ctx.engine, result.clusters, "clusters")
    pairs = None if result.pairs is None else _as_table(ctx.engine, result.pairs, "pairs")
    timings["match"] = time.perf_counter() - t0
    diagnostics = result.diagnostics or {}
    try:
        json.dumps(diagnostics, default=str)
    except (TypeError, ValueError) as exc:
        msg = f"diagnostics are not JSON-able: {exc}"
        raise MalformedOutput(msg) from exc
    return Outcome(clusters=clusters, pairs=pairs, diagnostics=diagnostics, timings=timings)


def _ids_sample(rows: list[dict[str, Any]], key: str = "record_id") -> str:
    return ", ".join(str(r[key]) for r in rows)


def validate_clusters(con: duckdb.DuckDBPyConnection, clusters: pa.Table, records: str) -> None:
    """Check the clusters contract: schema, no nulls, every record exactly once.

    Raises
    ------
    MalformedOutput
        Naming the problem and up to five offending record ids.
    """
    missing_cols = [c for c in CLUSTER_COLUMNS if c not in clusters.column_names]
    if missing_cols:
        msg = (
            f"clusters lack column(s) {', '.join(missing_cols)} "
            f"(got {', '.join(clusters.column_names)})"
        )
        raise MalformedOutput(msg)
    rid_type = clusters.schema.field("record_id").type
    if not pa.types.is_integer(rid_type):
        msg = f"clusters.record_id must be an integer column like the input ids, got {rid_type}"
        raise MalformedOutput(msg)
    engine.register_arrow(con, "__idbench_check_clusters", clusters.select(CLUSTER_COLUMNS))
    try:
        stats = engine.query_one(
            con,
            "SELECT count(*) AS n, count(record_id) AS n_id, count(cluster_id) AS n_cluster, "
            "count(DISTINCT record_id) AS n_distinct FROM __idbench_check_clusters",
            step="validate clusters",
        )
        if stats["n_id"] < stats["n"] or stats["n_cluster"] < stats["n"]:
            msg = "clusters contain NULL record_id or cluster_id"
            raise MalformedOutput(msg)
        if stats["n_distinct"] < stats["n"]:
            dup = engine.query(
                con,
                "SELECT record_id FROM __idbench_check_clusters GROUP BY record_id "
                "HAVING count(*) > 1 ORDER BY record_id LIMIT 5",
                step="validate clusters",
            ).to_pylist()
            msg = (
                f"clusters list {stats['n'] - stats['n_distinct']} record(s) more than once "
                f"(e.g. record_id {_ids_sample(dup)})"
            )
            raise MalformedOutput(msg)
        q = engine.quote_ident(records)
        absent = engine.query(
            con,
            f"SELECT r.record_id FROM {q} r ANTI JOIN __idbench_check_clusters c "
            f"ON r.record_id = c.record_id ORDER BY r.record_id LIMIT 5",
            step="validate clusters",
        ).to_pylist()
        n_absent = engine.query_one(
            con,
            f"SELECT count(*) AS n FROM {q} r ANTI JOIN __idbench_check_clusters c "
            f"ON r.record_id = c.record_id",
            step="validate clusters",
        )["n"]
        if n_absent:
            msg = f"clusters omit {n_absent} input record(s) (e.g. record_id {_ids_sample(absent)})"
            raise MalformedOutput(msg)
        unknown = engine.query(
            con,
            f"SELECT c.record_id FROM __idbench_check_clusters c ANTI JOIN {q} r "
            f"ON r.record_id = c.record_id ORDER BY c.record_id LIMIT 5",
            step="validate clusters",
        ).to_pylist()
        if unknown:
            msg = f"clusters contain record ids that are not inputs (e.g. {_ids_sample(unknown)})"
            raise MalformedOutput(msg)
    finally:
        con.unregister("__idbench_check_clusters")


def validate_pairs(con: duckdb.DuckDBPyConnection, pairs: pa.Table, records: str) -> None:
    """Check the pairs contract: l < r, no duplicates, known ids, finite scores.

    Raises
    ------
    MalformedOutput
        Naming the problem and an example pair.
    """
    missing_cols = [c for c in PAIR_COLUMNS if c not in pairs.column_names]
    if missing_cols:
        msg = (
            f"pairs lack column(s) {', '.join(missing_cols)} (got {', '.join(pairs.column_names)})"
        )
        raise MalformedOutput(msg)
    for col in ("record_id_l", "record_id_r"):
        col_type = pairs.schema.field(col).type
        if not pa.types.is_integer(col_type):
            msg = f"pairs.{col} must be an integer column like the input ids, got {col_type}"
            raise MalformedOutput(msg)
    score_type = pairs.schema.field("score").type
    if not (pa.types.is_floating(score_type) or pa.types.is_integer(score_type)):
        msg = f"pairs.score must be numeric, got {score_type}"
        raise MalformedOutput(msg)
    engine.register_arrow(con, "__idbench_check_pairs", pairs.select(PAIR_COLUMNS))
    q = engine.quote_ident(records)
    try:
        s = engine.query_one(
            con,
            f"""
            SELECT
              count(*) FILTER (WHERE record_id_l IS NULL OR record_id_r IS NULL OR score IS NULL)
                AS n_null,
              count(*) FILTER (WHERE record_id_l >= record_id_r) AS n_order,
              min(CASE WHEN record_id_l >= record_id_r
                       THEN CAST(record_id_l AS VARCHAR) || ', ' || CAST(record_id_r AS VARCHAR)
                  END) AS ex_order,
              count(*) FILTER (WHERE NOT isfinite(CAST(score AS DOUBLE))) AS n_nonfinite,
              count(*) - count(DISTINCT (record_id_l, record_id_r)) AS n_dup,
              count(*) FILTER (WHERE record_id_l NOT IN (SELECT record_id FROM {q})
                                  OR record_id_r NOT IN (SELECT record_id FROM {q})) AS n_unknown
            FROM __idbench_check_pairs
            """,
            step="validate pairs",
        )
    finally:
        con.unregister("__idbench_check_pairs")
    problems = []
    if s["n_null"]:
        problems.append(f"{s['n_null']} pair(s) with NULL ids or score")
    if s["n_order"]:
        problems.append(
            f"{s['n_order']} pair(s) with record_id_l >= record_id_r (e.g. ({s['ex_order']}); "
            "put the smaller id left and drop self-pairs)"
        )
    if s["n_nonfinite"]:
        problems.append(f"{s['n_nonfinite']} pair(s) with a non-finite score")
    if s["n_dup"]:
        problems.append(f"{s['n_dup']} duplicate pair(s)")
    if s["n_unknown"]:
        problems.append(f"{s['n_unknown']} pair(s) naming record ids that are not inputs")
    if problems:
        msg = "pairs are malformed: " + "; ".join(problems)
        raise MalformedOutput(msg)
