"""``exact_sum`` (bench.api): float sums that do not depend on the order their terms arrive in."""

from __future__ import annotations

import numpy as np

from bench.api import exact_sum
from bench.sql.engine import connect


def _sums(values: np.ndarray, expr: str) -> float:
    con = connect(threads=1)  # one thread adds the rows in table order
    con.sql("CREATE TABLE t AS SELECT unnest(?::DOUBLE[]) AS w, 1 AS g", params=[values.tolist()])
    got = con.sql(f"SELECT {expr} FROM t GROUP BY g").fetchall()[0][0]
    con.close()
    return got


def test_exact_sum_is_the_same_in_any_order_where_a_plain_sum_is_not() -> None:
    rng = np.random.default_rng(3)
    values = 1 / np.log(1 + rng.integers(1, 500, 2000))  # the shared-IP weights' shape
    orders = [values, values[::-1], rng.permutation(values), np.sort(values)]
    plain = {_sums(v, "sum(w)") for v in orders}
    exact = {_sums(v, exact_sum("w")) for v in orders}
    assert len(plain) > 1, "the plain sum should show the order (else this test shows nothing)"
    assert len(exact) == 1
    assert abs(exact.pop() - float(np.sum(values))) < 1e-9


def test_exact_sum_as_a_window() -> None:
    con = connect(threads=1)
    con.sql("CREATE TABLE t AS SELECT * FROM (VALUES (1, 0.1), (1, 0.2), (2, 0.5)) v(k, w)")
    rows = con.sql(
        f"SELECT k, {exact_sum('w', 'PARTITION BY k')} AS s FROM t ORDER BY k, w"
    ).fetchall()
    con.close()
    assert rows == [(1, 0.3), (1, 0.3), (2, 0.5)]
