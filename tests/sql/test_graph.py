"""Connected components in SQL (``bench.sql.graph``) against union-find and hand-checked caps."""

from __future__ import annotations

import itertools
import random

import pytest

from bench.sql.engine import connect
from bench.sql.graph import capped_components, connected_components

#: Large, non-contiguous ids, as real datasets have.
BASE = 10**12 + 7


def _temp(name: str) -> str:
    return f"__idbench_m_{name}"


def _union_find(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comp: dict[int, list[int]] = {}
    for n in {x for e in edges for x in e}:
        comp.setdefault(find(n), []).append(n)
    return {n: min(members) for members in comp.values() for n in members}


def _labels(edges: list[tuple[int, int]]) -> dict[int, int]:
    con = connect(threads=2)
    con.sql(
        "CREATE TABLE e AS SELECT unnest(?::BIGINT[]) AS a, unnest(?::BIGINT[]) AS b",
        params=[[a for a, _ in edges], [b for _, b in edges]],
    )
    res = connected_components(con, "SELECT a, b FROM e", _temp)
    got = dict(con.sql(f'SELECT node, label FROM "{res.table}"').fetchall())
    con.close()
    return got


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_connected_components_match_union_find(seed: int) -> None:
    rng = random.Random(seed)
    nodes = [BASE + 7919 * i for i in range(400)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(300)]
    expected = _union_find(edges)
    got = _labels(edges)
    assert {n: got.get(n, n) for n in expected} == expected


@pytest.mark.parametrize("shape", ["chain", "star", "zigzag"])
def test_shapes_collapse_to_their_smallest_node(shape: str) -> None:
    n = 64
    ids = [BASE + i for i in range(n)]
    if shape == "chain":
        edges = list(itertools.pairwise(ids))
    elif shape == "star":
        edges = [(ids[-1], x) for x in ids[:-1]]
    else:  # a path through 1, 0, 3, 2, 5, 4, ...: local minima alternate
        edges = list(itertools.pairwise(ids[i ^ 1] for i in range(n)))
    got = _labels(edges)
    assert {x: got.get(x, x) for x in ids} == {x: ids[0] for x in ids}


def test_capped_components_raise_the_threshold_inside_an_oversized_component() -> None:
    # Two triangles of strong edges (0.9) joined by one weak edge (0.5): with a cap of 3
    # the six-node component is too large, the threshold rises above 0.5 and each
    # triangle stands alone.
    a, b = [BASE + i for i in range(3)], [BASE + 10 + i for i in range(3)]
    edges = [(a[0], a[1], 0.9), (a[1], a[2], 0.9), (b[0], b[1], 0.9), (b[1], b[2], 0.9)]
    edges.append((a[2], b[0], 0.5))
    con = connect(threads=1)
    con.sql(
        "CREATE TABLE e AS SELECT unnest(?::BIGINT[]) AS a, unnest(?::BIGINT[]) AS b, "
        "unnest(?::DOUBLE[]) AS score",
        params=[[e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges]],
    )
    res = capped_components(con, "e", _temp, threshold=0.4, max_size=3)
    got = dict(con.sql(f'SELECT node, label FROM "{res.table}"').fetchall())
    con.close()
    assert got == {**{x: a[0] for x in a}, **{x: b[0] for x in b}}
    assert res.steps >= 1 and res.thresholds[0] == 0.4 and res.thresholds[-1] > 0.5
    assert res.dropped_nodes == 0


def test_capped_components_leave_an_unbreakable_component_single() -> None:
    # A four-clique of equal scores cannot be split by raising the threshold: cap 2
    # leaves every node on its own.
    ids = [BASE + i for i in range(4)]
    edges = [(x, y) for i, x in enumerate(ids) for y in ids[i + 1 :]]
    con = connect(threads=1)
    con.sql(
        "CREATE TABLE e AS SELECT unnest(?::BIGINT[]) AS a, unnest(?::BIGINT[]) AS b, "
        "0.8::DOUBLE AS score",
        params=[[x for x, _ in edges], [y for _, y in edges]],
    )
    res = capped_components(con, "e", _temp, threshold=0.5, max_size=2)
    got = dict(con.sql(f'SELECT node, label FROM "{res.table}"').fetchall())
    con.close()
    assert got == {}
    assert res.dropped_nodes == 4
