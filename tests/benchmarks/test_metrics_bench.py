"""Benchmark of bench.metrics.evaluate on generated partitions.

Only ``evaluate`` is timed; the tables are built beforehand. The size defaults to 50k
records (the quick CI mode; ``make bench`` sets 1M); set ``IDBENCH_BENCH_RECORDS`` for
another, e.g. 10000000.
Run with ``make bench`` (or ``pytest -m bench --benchmark-enable tests/benchmarks``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from bench.metrics.core import evaluate
from bench.sql import engine

N_RECORDS = int(os.environ.get("IDBENCH_BENCH_RECORDS", "50000"))
THREADS = 2

#: How the predicted cluster of record ``record_id`` (true person ``person_id``) is made.
#: ``noisy``: 90% of records keep their person, 10% go to a random cluster; ``giant``:
#: everything in one cluster (N(N-1)/2 predicted pairs); ``singletons``: nothing merged
#: (the most groups, the heaviest case for the aggregation).
SCENARIOS = {
    "noisy": (
        "CASE WHEN hash(record_id * 7) % 10 = 0 THEN hash(record_id * 13) % {persons} "
        "ELSE person_id END"
    ),
    "giant": "0",
    "singletons": "record_id",
}


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = engine.connect(threads=THREADS)
    # ~3 records per person; ids spread over 64 bits like real record ids
    engine.execute(
        c,
        f"CREATE TABLE bench_truth AS SELECT i * 7919 + 1000000000000 AS record_id, "
        f"hash(i) % {max(N_RECORDS // 3, 1)} AS person_id FROM range({N_RECORDS}) AS t(i)",
        step="bench: build truth",
    )
    yield c
    c.close()


@pytest.mark.bench
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_evaluate_speed(benchmark: Any, con: duckdb.DuckDBPyConnection, scenario: str) -> None:
    cluster_expr = SCENARIOS[scenario].format(persons=max(N_RECORDS // 3, 1))
    engine.execute(
        con,
        f"CREATE OR REPLACE TABLE bench_clusters AS "
        f"SELECT record_id, {cluster_expr} AS cluster_id FROM bench_truth",
        step=f"bench: build {scenario} clusters",
    )

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (con, "bench_clusters", "bench_truth"), {}

    m = benchmark.pedantic(evaluate, setup=setup, rounds=3, iterations=1)

    assert m["n_records"] == N_RECORDS
    if scenario == "giant":
        assert m["pred_pairs"] == N_RECORDS * (N_RECORDS - 1) // 2
        assert m["recall"] == (1.0 if m["true_pairs"] else None)
    elif scenario == "singletons":
        assert m["pred_pairs"] == 0
        assert m["precision"] is None
        assert m["bcubed_precision"] == 1.0
    elif N_RECORDS >= 10_000:  # 10% of records moved at random: pairwise F1 near 0.8
        assert 0.7 < m["f1"] < 0.9
    benchmark.extra_info.update(
        scenario=scenario,
        n_records=N_RECORDS,
        threads=THREADS,
        pred_pairs=m["pred_pairs"],
        precision=m["precision"],
        recall=m["recall"],
        f1=m["f1"],
        bcubed_f1=m["bcubed_f1"],
    )
