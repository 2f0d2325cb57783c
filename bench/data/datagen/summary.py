"""Counts and distributions of a generated dataset (``idbench describe``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data.datagen.realism import realism
from bench.data.dataset import Dataset
from bench.sql import engine


def describe(path: str | Path) -> dict[str, Any]:
    """Summarise a generated dataset: counts per source and hazard, per-person spreads.

    Returns a JSON-able dict with ``records_by_source``, ``hazards`` (records per tag),
    ``records_per_person`` (overall and per source group: mean and quantiles),
    ``identifiers_per_person`` (per identifier type), ``tables`` (row counts) and
    ``persons`` / ``households``, and ``realism`` (see :mod:`.realism`: identifiers per
    person per month, sampled persons per IP by kind, true pairs meeting on an IP,
    evidence rows per identifier, true pairs per pair class).
    """
    ds = Dataset.open(path)
    con = engine.connect(threads=2)
    try:
        engine.register_parquet(con, "r", ds.records_path)
        engine.register_parquet(con, "t", ds.truth_path)
        by_source = engine.query(
            con, "SELECT source, count(*) AS n FROM r GROUP BY source ORDER BY source"
        ).to_pylist()
        truth = ds.truth_tables
        hz: list[dict[str, Any]] = []
        if "hazards" in truth:
            engine.register_parquet(con, "h", truth["hazards"])
            hz = engine.query(
                con, "SELECT hazard, count(*) AS n FROM h GROUP BY hazard ORDER BY hazard"
            ).to_pylist()

        def spread(where: str) -> dict[str, Any]:
            return engine.query_one(
                con,
                f"""
                WITH c AS (SELECT t.person_id, count(*) AS n FROM t JOIN r USING (record_id)
                           WHERE {where} GROUP BY t.person_id)
                SELECT count(*) AS persons, avg(n) AS mean, min(n) AS min,
                       quantile_disc(n, 0.5) AS p50, quantile_disc(n, 0.9) AS p90,
                       quantile_disc(n, 0.99) AS p99, max(n) AS max FROM c
                """,
                step="describe spread",
            )

        per_person = {
            "all": spread("TRUE"),
            "first_party": spread("r.source NOT IN ('cookie', 'maid')"),
            "anonymous": spread("r.source IN ('cookie', 'maid')"),
        }
        ids: list[dict[str, Any]] = []
        if "identifiers" in truth:
            engine.register_parquet(con, "i", truth["identifiers"])
            ids = engine.query(
                con,
                """
                WITH c AS (SELECT id_type, person_id, count(DISTINCT id_value) AS n
                           FROM i GROUP BY id_type, person_id)
                SELECT id_type, count(*) AS persons, avg(n) AS mean,
                       quantile_disc(n, 0.5) AS p50, max(n) AS max
                FROM c GROUP BY id_type ORDER BY id_type
                """,
            ).to_pylist()
        sizes = engine.query_one(
            con,
            """SELECT count(DISTINCT person_id) AS persons_with_records,
                      count(DISTINCT household_id) AS households_with_records FROM t""",
        )
        counts = ds.manifest.get("counts", {})
        real = realism(con, truth, ds.tables, int(counts.get("persons") or 0))
    finally:
        con.close()
    return {
        "name": ds.name,
        "fingerprint": ds.fingerprint,
        "seed": ds.manifest.get("seed"),
        "persons": counts.get("persons"),
        "households": counts.get("households"),
        **sizes,
        "records": sum(r["n"] for r in by_source),
        "records_by_source": {r["source"]: r["n"] for r in by_source},
        "hazards": {r["hazard"]: r["n"] for r in hz},
        "records_per_person": {
            k: {kk: (float(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
            for k, v in per_person.items()
        },
        "identifiers_per_person": {
            r["id_type"]: {k: v for k, v in r.items() if k != "id_type"} for r in ids
        },
        "tables": {k: v for k, v in (ds.manifest.get("rows") or {}).items()},
        "realism": real,
    }
