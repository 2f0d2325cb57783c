"""Realism figures of a generated dataset (part of ``idbench describe``).

The figures the design reference asks a world to get right, each comparable with its
source in ``datasets/README.md``: identifiers per person per month, sampled persons per
IP by network kind, the share of true identifier pairs that meet on an IP within 30 days,
evidence rows per identifier, and the share of true record pairs per pair class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from bench.sql import engine

#: Record sources of the anonymous lens; ``login`` is first-party but counted apart.
ANONYMOUS = ("cookie", "maid")
#: Window within which two sightings on one IP count as a meeting.
MEET_DAYS = 30
#: Persons sampled for the pair figure (every k-th person id).
PAIR_SAMPLE = 2_000


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _float_row(row: dict[str, Any] | None) -> dict[str, Any]:
    """A result row with Decimal/float cells as float (JSON-able)."""
    return {k: (float(v) if v is not None and not isinstance(v, int | str) else v)
            for k, v in (row or {}).items()}  # fmt: skip


def identifiers_per_person_month(con: duckdb.DuckDBPyConnection, persons: int) -> dict[str, float]:
    """Mean identifiers alive per person and calendar month, by identifier type.

    Parameters
    ----------
    con
        Connection with the truth identifiers registered as ``i``.
    persons
        Persons of the world (persons without an identifier count as zero).

    Returns
    -------
    dict
        ``id_type -> identifiers per person per month``.
    """
    rows = engine.query(
        con,
        f"""
        WITH m AS (SELECT unnest(generate_series(date_trunc('month', min(valid_from)),
                                                 max(valid_to), INTERVAL 1 MONTH)) AS m0
                   FROM i),
             a AS (SELECT i.id_type, m.m0, count(*) AS n FROM i JOIN m
                     ON i.valid_from < m.m0 + INTERVAL 1 MONTH AND i.valid_to >= m.m0
                   GROUP BY 1, 2)
        SELECT id_type, sum(n) / ((SELECT count(*) FROM m) * {max(persons, 1)}) AS v
        FROM a GROUP BY 1 ORDER BY 1
        """,
    ).to_pylist()
    return {r["id_type"]: float(r["v"]) for r in rows}


def persons_per_ip(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Sampled persons seen on each IP over the horizon, by kind: IPs, mean, p99, max.

    Needs ``x`` (identifier_ip), ``t`` (truth records) and ``k`` (truth ips).
    """
    rows = engine.query(
        con,
        """
        WITH p AS (SELECT k.kind, x.ip, count(DISTINCT t.person_id) AS n
                   FROM x JOIN t USING (record_id) JOIN k USING (ip) GROUP BY 1, 2)
        SELECT kind, count(*) AS ips, avg(n) AS mean, quantile_disc(n, 0.99) AS p99,
               max(n) AS max FROM p GROUP BY 1 ORDER BY 1
        """,
    ).to_pylist()
    return {r["kind"]: _float_row({k: v for k, v in r.items() if k != "kind"}) for r in rows}


def true_pairs_meeting_on_ip(con: duckdb.DuckDBPyConnection, persons: int) -> dict[str, Any]:
    """Share of true anonymous identifier pairs seen on one IP within :data:`MEET_DAYS`.

    A pair meets when both identifiers have an ``identifier_ip`` row on one address
    whose first/last-seen spans are at most ``MEET_DAYS`` days apart (overlap counts).
    Computed on every k-th person (about :data:`PAIR_SAMPLE` persons) so large datasets
    stay quick to describe.
    """
    every = max(1, persons // PAIR_SAMPLE)
    return _float_row(
        engine.query_one(
            con,
            f"""
            WITH a AS (SELECT t.person_id, r.record_id FROM r JOIN t USING (record_id)
                       WHERE r.source IN ({_in(ANONYMOUS)}) AND t.person_id % {every} = 0),
                 tot AS (SELECT sum(n * (n - 1) / 2) AS pairs
                         FROM (SELECT person_id, count(*) AS n FROM a GROUP BY 1)),
                 e AS (SELECT a.person_id, x.record_id, x.ip, x.first_seen AS fs,
                              x.last_seen AS ls FROM x JOIN a USING (record_id)),
                 m AS (SELECT DISTINCT e1.record_id AS l, e2.record_id AS rr
                       FROM e e1 JOIN e e2 ON e1.ip = e2.ip AND e1.person_id = e2.person_id
                        AND e1.record_id < e2.record_id
                       WHERE greatest(e1.fs, e2.fs) - least(e1.ls, e2.ls)
                             <= INTERVAL {MEET_DAYS} DAY)
            SELECT (SELECT pairs FROM tot) AS true_pairs, count(*) AS meeting,
                   count(*) / nullif((SELECT pairs FROM tot), 0) AS share FROM m
            """,
            step="realism: true pairs meeting on an IP",
        )
    )


def evidence_rows(con: duckdb.DuckDBPyConnection, tables: dict[str, Path]) -> dict[str, Any]:
    """Evidence rows per anonymous identifier (median, p90): ``identifier_ip`` and all."""
    parts = [
        f"SELECT record_id, '{name}' AS t FROM read_parquet('{path}')"
        for name, path in tables.items()
        if name.startswith("identifier_")
    ]
    if not parts:
        return {}
    return _float_row(
        engine.query_one(
            con,
            f"""
            WITH e AS ({" UNION ALL ".join(parts)}),
                 c AS (SELECT record_id, count(*) AS n_all,
                              count(*) FILTER (WHERE t = 'identifier_ip') AS n_ip
                       FROM e GROUP BY 1)
            SELECT quantile_disc(n_ip, 0.5) AS ip_p50, quantile_disc(n_ip, 0.9) AS ip_p90,
                   quantile_disc(n_all, 0.5) AS all_p50, quantile_disc(n_all, 0.9) AS all_p90,
                   count(*) AS identifiers FROM c
            """,
            step="realism: evidence rows",
        )
    )


def pair_classes(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Share of true record pairs (same person) per class of the two records' sources.

    Classes: ``first_party`` (crm, order, loyalty, pos), ``login`` (first-party, but the
    authenticated cookie link), ``anonymous`` (cookie, maid); the key joins two classes
    with ``/``.
    """
    rows = engine.query(
        con,
        f"""
        WITH g AS (SELECT t.person_id,
                          CASE WHEN r.source IN ({_in(ANONYMOUS)}) THEN 'anonymous'
                               WHEN r.source = 'login' THEN 'login'
                               ELSE 'first_party' END AS g
                   FROM r JOIN t USING (record_id)),
             c AS (SELECT person_id, g, count(*)::DOUBLE AS n FROM g GROUP BY 1, 2),
             p AS (SELECT a.g || '/' || b.g AS cls,
                          sum(CASE WHEN a.g = b.g THEN a.n * (a.n - 1) / 2 ELSE a.n * b.n END)
                            AS pairs
                   FROM c a JOIN c b ON a.person_id = b.person_id AND a.g <= b.g GROUP BY 1)
        SELECT cls, pairs / sum(pairs) OVER () AS share FROM p ORDER BY cls
        """,
    ).to_pylist()
    return {r["cls"]: float(r["share"] or 0.0) for r in rows}


def realism(
    con: duckdb.DuckDBPyConnection,
    truth: dict[str, Path],
    tables: dict[str, Path],
    persons: int,
) -> dict[str, Any]:
    """The realism table of a dataset whose records / truth records are ``r`` / ``t``.

    Parameters
    ----------
    con
        Connection with ``r`` (records) and ``t`` (truth records) registered.
    truth
        Truth table paths by name (``identifiers``, ``ips`` are used when present).
    tables
        Auxiliary table paths by name (the ``identifier_*`` evidence tables).
    persons
        Persons of the world.

    Returns
    -------
    dict
        JSON-able: ``identifiers_per_person_month``, ``persons_per_ip``,
        ``true_pairs_meeting_on_ip`` (on a sample of persons),
        ``evidence_rows_per_identifier``, ``pair_classes``.
    """
    out: dict[str, Any] = {"pair_classes": pair_classes(con)}
    if "identifiers" in truth:
        engine.register_parquet(con, "i", truth["identifiers"])
        out["identifiers_per_person_month"] = identifiers_per_person_month(con, persons)
    if "identifier_ip" in tables and "ips" in truth:
        engine.register_parquet(con, "x", tables["identifier_ip"])
        engine.register_parquet(con, "k", truth["ips"])
        out["persons_per_ip"] = persons_per_ip(con)
        out["true_pairs_meeting_on_ip"] = true_pairs_meeting_on_ip(con, persons)
    out["evidence_rows_per_identifier"] = evidence_rows(con, tables)
    return out
