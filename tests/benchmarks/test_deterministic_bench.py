"""Speed of the deterministic matchers (pytest-benchmark; ``-m bench``).

Input: ``IDBENCH_BENCH_RECORDS`` synthetic records (default 50k, the quick CI mode;
``make bench`` sets 1M) made with DuckDB
``range()`` and hash-based keys, ~30% of records sharing an e-mail and ~30% a phone with
another record, so e-mail and phone groups chain into larger components. Figures measured
by hand at 10M are in the deterministic matchers' report (cascade e-mail OR phone with
transitive closure, and a single-key exact match).
"""

from __future__ import annotations

import os

import pytest

from bench.api import MatchContext
from bench.sql.engine import connect, execute, materialise
from matchers.cascade import Cascade, CascadeGuarded

pytestmark = pytest.mark.bench

N_RECORDS = int(os.environ.get("IDBENCH_BENCH_RECORDS", "50000"))


def make_records(con, n: int, table: str = "records") -> None:
    """Create ``table`` with ``n`` synthetic records (ids 10**12 + 7919*i)."""
    shared = max(n * 15 // 100, 1)  # 30% of records share a key with ~1 other record
    execute(
        con,
        f"""CREATE OR REPLACE TABLE {table} AS
        SELECT 1000000000000 + 7919 * i AS record_id,
               'crm' AS source,
               CASE WHEN hash(i, 1) % 10 < 3 THEN 'Shared.' || (hash(i, 2) % {shared})
                    ELSE 'user' || i END || '@Mail.com' AS email,
               '(' || lpad(CAST(200 + (k % 800) AS VARCHAR), 3, '0') || ') '
                   || lpad(CAST(k // 800 % 10000000 AS VARCHAR), 7, '0') AS phone
        FROM (SELECT i, CASE WHEN hash(i, 3) % 10 < 3 THEN hash(i, 4) % {shared}
                             ELSE {shared} + i END AS k
              FROM range({n}) t(i))""",
        step="bench records",
    )


def _run(matcher):
    con = connect(threads=2)
    make_records(con, N_RECORDS)
    ctx = MatchContext(con=con, records="records", threads=2)

    def target():
        result = matcher.fit(ctx).match(ctx)
        return materialise(con, result.clusters, step="clusters")

    return con, target


@pytest.mark.parametrize(
    "matcher",
    [
        Cascade(rules=[["email"], ["phone"]]),
        Cascade(rules=[["email"]]),
        CascadeGuarded(rules=[["email"], ["phone"]]),
    ],
    ids=["cascade-email-or-phone", "exact-email", "guarded-email-or-phone"],
)
def test_deterministic_speed(benchmark, matcher):
    state: dict = {}

    def setup():
        state["con"], state["target"] = _run(matcher)
        return (), {}

    table = benchmark.pedantic(lambda: state["target"](), setup=setup, rounds=1, iterations=1)
    assert table.num_rows == N_RECORDS
    benchmark.extra_info["records"] = N_RECORDS
    benchmark.extra_info["clusters"] = len(set(table.column("cluster_id").to_pylist()))
