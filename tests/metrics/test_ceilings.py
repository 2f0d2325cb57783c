"""Evidence ceilings of a dataset: a hand-built case, the cache, and brute force."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.metrics.ceilings import CEILINGS_FILE, evidence_ceilings
from bench.metrics.evaluate import evaluate_run
from bench.sql import engine


def day(month: int, d: int) -> datetime:
    return datetime(2024, month, d, 12)


# Person A (1): a1 a2 a3 a4 anonymous, fa crm; person B (2): b1 b2.
# IP X (shared by both persons, like a CGNAT address): a1 Jan 1-2, a2 Mar 1-2, b1 Jan 1,
#   b2 Jan 5. IP Y: a2 Mar 5, a3 Mar 10. a4 has no evidence.
ROWS = [
    ("a1", 1, "cookie", "K1", None),
    ("a2", 1, "maid", "K2", None),
    ("a3", 1, "cookie", "K3", None),
    ("a4", 1, "cookie", "K4", None),
    ("fa", 1, "crm", "K5", None),
    ("b1", 2, "cookie", "K6", None),
    ("b2", 2, "cookie", "K7", None),
]
IPS = [
    ("a1", "X", day(1, 1), day(1, 2)),
    ("a2", "X", day(3, 1), day(3, 2)),
    ("b1", "X", day(1, 1), day(1, 1)),
    ("b2", "X", day(1, 5), day(1, 5)),
    ("a2", "Y", day(3, 5), day(3, 5)),
    ("a3", "Y", day(3, 10), day(3, 10)),
]


def test_ceilings_hand_checked(tmp_path, lens_run):
    ds, raw, _ = lens_run(tmp_path, ROWS, IPS)
    c = evaluate_run(raw, ds, threads=1)["ceilings"]
    # true anonymous pairs: A 4*3/2 = 6 (fa is first-party), B 1 -> 7
    assert (c["anonymous_records"], c["records_with_ip"], c["true_pairs"]) == (6, 5, 7)
    # direct: a1a2 (X), a2a3 (Y), b1b2 (X); a1b1 share X but are not one person -> 3
    assert c["direct_pairs"] == 3 and c["direct_share"] == pytest.approx(3 / 7)
    # within 30 days on the shared IP: a1a2 on X: Mar 1 - Jan 2 = 59 days, no;
    #   a2a3 on Y: 5 days; b1b2 on X: 4 days -> 2
    assert c["direct_near_pairs"] == 2 and c["direct_near_share"] == pytest.approx(2 / 7)
    # closure: A {a1 a2 a3} via X then Y: 3 pairs (a1a3 only by closure), a4 alone; B 1 -> 4
    assert c["closure_pairs"] == 4 and c["closure_share"] == pytest.approx(4 / 7)
    # cached in the dataset's truth folder, keyed by its fingerprint
    cached = json.loads((ds.root / "truth" / CEILINGS_FILE).read_text())
    assert cached["key"]["fingerprint"] == ds.fingerprint and cached["ceilings"] == c


def test_ceilings_cache_is_used(tmp_path, lens_run):
    ds, _raw, _ = lens_run(tmp_path, ROWS, IPS)
    con = engine.connect(threads=1)
    try:
        first = evidence_ceilings(con, ds)
        path = ds.root / "truth" / CEILINGS_FILE
        stored = json.loads(path.read_text())
        stored["ceilings"]["direct_pairs"] = -1  # a cached value is returned as stored
        path.write_text(json.dumps(stored))
        assert evidence_ceilings(con, ds)["direct_pairs"] == -1
        assert evidence_ceilings(con, ds, use_cache=False) == first
        assert evidence_ceilings(con, ds, near_days=60)["direct_near_pairs"] == 3  # other key
    finally:
        con.close()


def test_no_evidence_no_ceilings(tmp_path, lens_run):
    ds, raw, _ = lens_run(tmp_path, ROWS)
    assert evaluate_run(raw, ds, threads=1)["ceilings"] is None


# --- brute force ----------------------------------------------------------------------

cases = st.integers(min_value=2, max_value=10).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 2), min_size=n, max_size=n),  # persons
        # evidence rows: (record, ip, first day, length)
        st.lists(
            st.tuples(
                st.integers(0, n - 1), st.integers(0, 3), st.integers(0, 90), st.integers(0, 10)
            ),
            max_size=3 * n,
        ),
    )
)


def _closure_pairs(n: int, persons: list[int], edges: list[tuple[int, int]]) -> int:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in edges:
        parent[find(i)] = find(j)
    return sum(find(i) == find(j) for i, j in combinations(range(n), 2) if persons[i] == persons[j])


@settings(max_examples=30, deadline=None)
@given(cases)
def test_ceilings_match_brute_force(
    tmp_path_factory: pytest.TempPathFactory, lens_run: Callable[..., Any], case: Any
) -> None:
    persons, evidence = case
    n = len(persons)
    start = datetime(2024, 1, 1)
    rows = [(f"r{i}", persons[i], "cookie", f"K{i}", None) for i in range(n)]
    ips = [
        (f"r{i}", f"ip{ip}", start + timedelta(days=a), start + timedelta(days=a + b))
        for i, ip, a, b in evidence
    ]
    ds, _raw, _ = lens_run(tmp_path_factory.mktemp("c"), rows, ips)
    con = engine.connect(threads=1)
    try:
        got = evidence_ceilings(con, ds, use_cache=False)
    finally:
        con.close()
    true = [(i, j) for i, j in combinations(range(n), 2) if persons[i] == persons[j]]
    direct, near = set(), set()
    for (i, ip_i, a_i, b_i), (j, ip_j, a_j, b_j) in combinations(evidence, 2):
        if i == j or ip_i != ip_j or persons[i] != persons[j]:
            continue
        pair = (min(i, j), max(i, j))
        direct.add(pair)
        if max(a_i, a_j) - min(a_i + b_i, a_j + b_j) <= 30:
            near.add(pair)
    assert got["true_pairs"] == len(true)
    assert (got["direct_pairs"], got["direct_near_pairs"]) == (len(direct), len(near))
    assert got["closure_pairs"] == _closure_pairs(n, persons, sorted(direct))
