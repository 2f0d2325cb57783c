"""Benchmark of bench.metrics.evaluate.evaluate_run: every metric of a run, from files on disk.

A synthetic dataset directory (records with source / amount / ts, person and household
truth, hazard tags) and a run's raw outputs (noisy clusters, scored candidate pairs) are
written beforehand with DuckDB ``range()`` / ``hash()``; only ``evaluate_run`` is timed.
``core`` times what evaluation cost before the error-explaining metrics (the partition
metrics at both levels and the checksum, straight from the files); ``full`` times
``evaluate_run``. The difference is what the new metrics add. ``extra_info`` holds, per
scope, the median over the rounds (``median_s``, in seconds) and, for ``full``, the step
times of ``evaluation_timings`` with their split into ``core_steps_s`` (join, contingency,
partition metrics, checksum) and ``extended_steps_s`` (everything else), so
``--benchmark-json`` carries core vs full.

The size defaults to 200k records (seconds); set ``IDBENCH_BENCH_RECORDS`` for another,
e.g. 10000000 (then ~1 pair per record, ~10M scored pairs). Run with ``make bench`` (or
``pytest -m bench --benchmark-enable tests/benchmarks/test_evaluation_bench.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bench.data.dataset import Dataset, write_manifest
from bench.metrics import core as metrics
from bench.metrics.evaluate import evaluate_run, partition_checksum
from bench.run.execution import validate_clusters, validate_pairs
from bench.sql import engine

N_RECORDS = int(os.environ.get("IDBENCH_BENCH_RECORDS", "200000"))
THREADS = 2
#: Steps of ``evaluation_timings`` that the partition metrics need (the rest is what the
#: error-explaining metrics add).
CORE_STEPS = frozenset(
    {"base", "contingency", "partition_person", "partition_household", "checksum"}
)
HAZARDS = (
    "shared_family_email",
    "recycled_phone",
    "cgnat_ip",
    "itp_cookie_reset",
    "typo",
    "junk_identifier",
    "nickname",
    "email_churn",
)


def _build(root: Path) -> tuple[Dataset, Path]:
    """Write the dataset and the raw outputs; return the dataset and the raw directory."""
    n, persons = N_RECORDS, max(N_RECORDS // 3, 1)
    raw = root / "raw"
    for d in (root / "ds" / "truth", raw):
        d.mkdir(parents=True, exist_ok=True)
    ds = root / "ds"
    con = engine.connect(threads=THREADS)
    try:
        engine.execute(
            con,
            f"""
            CREATE TABLE b AS
            SELECT i * 7919 + 1000000000000 AS record_id,
                   CAST(hash(i) % {persons} AS BIGINT) AS person_id, i
            FROM range({n}) AS t(i)
            """,
            step="bench: base",
        )
        engine.write_parquet(
            con,
            """
            SELECT record_id,
                   CASE hash(i * 3) % 10 WHEN 0 THEN 'cookie' WHEN 1 THEN 'maid'
                        WHEN 2 THEN 'order' ELSE 'crm' END AS source,
                   CASE WHEN hash(i * 5) % 4 = 0 THEN (hash(i * 11) % 100000) / 100.0 END
                        AS amount,
                   TIMESTAMP '2024-01-01' + to_seconds(CAST(hash(i * 17) % 31536000 AS BIGINT))
                        AS ts
            FROM b
            """,
            ds / "records.parquet",
        )
        engine.write_parquet(
            con,
            "SELECT record_id, person_id, person_id // 2 AS household_id FROM b",
            ds / "truth" / "records.parquet",
        )
        tags = "[" + ", ".join(engine.literal(h) for h in HAZARDS) + "]"
        engine.write_parquet(
            con,
            f"""
            SELECT record_id, {tags}[CAST(1 + hash(i * 19) % {len(HAZARDS)} AS BIGINT)] AS hazard
            FROM b WHERE hash(i * 23) % 10 = 0
            UNION ALL
            SELECT record_id, {tags}[CAST(1 + hash(i * 29) % {len(HAZARDS)} AS BIGINT)] AS hazard
            FROM b WHERE hash(i * 23) % 50 = 0
            """,
            ds / "truth" / "hazards.parquet",
        )
        # 90% of records keep their person as cluster, 10% go to a random cluster.
        engine.write_parquet(
            con,
            f"""
            SELECT record_id,
                   CASE WHEN hash(i * 7) % 10 = 0 THEN CAST(hash(i * 13) % {persons} AS BIGINT)
                        ELSE person_id END AS cluster_id
            FROM b
            """,
            raw / "clusters.parquet",
        )
        # Candidates: each record with the next record of its person (true pairs) plus one
        # random partner per three records; scores continuous, true pairs scored higher.
        # Ids are BIGINT like the generator's and like the pairs the runner accepts.
        engine.write_parquet(
            con,
            f"""
            WITH nxt AS (
                SELECT record_id AS a,
                       lead(record_id) OVER (PARTITION BY person_id ORDER BY record_id) AS b
                FROM b
            ),
            rnd AS (
                SELECT record_id AS a,
                       CAST(hash(i * 31) % {n} AS BIGINT) * 7919 + 1000000000000 AS b
                FROM b WHERE i % 3 = 0
            ),
            cand AS (
                SELECT DISTINCT least(a, b) AS l, greatest(a, b) AS r
                FROM (SELECT * FROM nxt UNION ALL SELECT * FROM rnd) AS u
                WHERE b IS NOT NULL AND a <> b
            )
            SELECT c.l AS record_id_l, c.r AS record_id_r,
                   CASE WHEN x.person_id = y.person_id
                        THEN 0.4 + 0.6 * (hash(c.l, c.r) % 1000000000) / 1e9
                        ELSE 0.7 * (hash(c.l, c.r) % 1000000000) / 1e9 END AS score
            FROM cand AS c
            JOIN b AS x ON c.l = x.record_id
            JOIN b AS y ON c.r = y.record_id
            """,
            raw / "pairs.parquet",
        )
    finally:
        con.close()
    write_manifest(
        ds,
        name="bench-evaluation",
        kind="bench",
        recipe={"records": n},
        seed=None,
        generator={"name": "tests.benchmarks", "version": "1"},
    )
    return Dataset.open(ds), raw


def _check_outputs(dataset: Dataset, raw: Path) -> None:
    """The raw outputs obey the matcher contract the runner enforces (types included)."""
    con = engine.connect(threads=THREADS)
    try:
        engine.register_parquet(con, "records", dataset.records_path)
        validate_clusters(con, pq.read_table(raw / "clusters.parquet"), "records")
        validate_pairs(con, pq.read_table(raw / "pairs.parquet"), "records")
    finally:
        con.close()


@pytest.fixture(scope="module")
def run_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path]:
    dataset, raw = _build(tmp_path_factory.mktemp("evaluation-bench"))
    _check_outputs(dataset, raw)
    return dataset, raw


def _core_only(raw: Path, dataset: Dataset) -> dict[str, Any]:
    """What evaluation cost before issue 6: partition metrics at both levels, checksum."""
    con = engine.connect(threads=THREADS)
    try:
        engine.register_parquet(con, "clusters", raw / "clusters.parquet")
        engine.register_parquet(con, "truth", dataset.truth_path)
        out = {
            "person": metrics.evaluate(con, "clusters", "truth", entity="person_id"),
            "household": metrics.evaluate(con, "clusters", "truth", entity="household_id"),
        }
        out["checksum"] = partition_checksum(con, "clusters")
        return out
    finally:
        con.close()


@pytest.mark.bench
@pytest.mark.parametrize("scope", ["core", "full"])
def test_evaluate_run_speed(benchmark: Any, run_files: tuple[Dataset, Path], scope: str) -> None:
    dataset, raw = run_files

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (raw, dataset), ({"threads": THREADS, "threshold": 0.5} if scope == "full" else {})

    target = evaluate_run if scope == "full" else _core_only
    r = benchmark.pedantic(target, setup=setup, rounds=3, iterations=1)

    assert r["person"]["n_records"] == N_RECORDS
    info: dict[str, Any] = {
        "scope": scope,
        "n_records": N_RECORDS,
        "threads": THREADS,
        "f1": r["person"]["f1"],
    }
    if scope == "full":
        cand = r["candidates"]["person"]
        assert cand["candidate_pairs"] == r["output"]["n_pairs"]
        assert len({p["threshold"] for p in r["curves"] if p["level"] == "person"}) > 10
        assert {h["hazard"] for h in r["hazards"]} == {"(all)", *HAZARDS}
        assert len([m for m in r["monthly"] if m["level"] == "person"]) == 12
        assert r["anonymous"]["person"]["records"] > 0
        steps = r["evaluation_timings"]
        info.update(
            candidate_pairs=cand["candidate_pairs"],
            pair_completeness=cand["pair_completeness"],
            best_f1=r["threshold_summary"]["person"]["best_f1"]["f1"],
            steps={k: round(v, 3) for k, v in steps.items()},
            # core vs full inside one evaluate_run (last round): the partition metrics'
            # steps and the error-explaining metrics' steps
            core_steps_s=round(sum(v for k, v in steps.items() if k in CORE_STEPS), 3),
            extended_steps_s=round(sum(v for k, v in steps.items() if k not in CORE_STEPS), 3),
        )
    # the median of this scope's rounds, to set beside the other scope's
    if benchmark.stats is not None:  # None in the quick (benchmark-disabled) mode
        info["median_s"] = round(benchmark.stats.stats.median, 3)
    benchmark.extra_info.update(info)
