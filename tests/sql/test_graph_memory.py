"""The in-memory closure (``bench.sql.graph_memory``) against graph search and the SQL one."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pyarrow as pa
import pytest

from bench.sql.engine import connect
from bench.sql.graph import connected_components
from bench.sql.graph_memory import record_clusters, smallest_in_component

#: Large, non-contiguous ids (sorted mapping) and dense ids (offset mapping).
SPARSE = [10**12 + 7919 * i for i in range(500)]
DENSE = [1000 + i for i in range(500)]


def _temp(name: str) -> str:
    return f"__idbench_m_{name}"


def _search(ids: list[int], edges: list[tuple[int, int]]) -> dict[int, int]:
    """Reference: breadth-first search from every unvisited id, smallest id as label."""
    near: dict[int, set[int]] = {x: set() for x in ids}
    for a, b in edges:
        near[a].add(b)
        near[b].add(a)
    label: dict[int, int] = {}
    for start in sorted(ids):
        if start in label:
            continue
        label[start], frontier = start, [start]
        while frontier:
            frontier = [y for x in frontier for y in near[x] if y not in label]
            label.update(dict.fromkeys(frontier, start))
    return label


def _load(ids: list[int], edges: list[tuple[int, int]]):
    con = connect(threads=2)
    con.sql("CREATE TABLE r AS SELECT unnest(?::BIGINT[]) AS record_id", params=[ids])
    con.sql(
        "CREATE TABLE e AS SELECT unnest(?::BIGINT[]) AS a, unnest(?::BIGINT[]) AS b",
        params=[[a for a, _ in edges], [b for _, b in edges]],
    )
    return con


def _clusters(ids: list[int], edges: list[tuple[int, int]]) -> tuple[dict[int, int], str]:
    con = _load(ids, edges)
    res = record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    rows = res.clusters.to_pylist()
    con.close()
    assert sorted(r["record_id"] for r in rows) == sorted(ids), "every record exactly once"
    return {r["record_id"]: r["cluster_id"] for r in rows}, str(res.diagnostics["node_index"])


@pytest.mark.parametrize(("ids", "mapping"), [(SPARSE, "sorted"), (DENSE, "offset")])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_record_gets_its_components_smallest_id(
    ids: list[int], mapping: str, seed: int
) -> None:
    rng = random.Random(seed)
    shuffled = rng.sample(ids, len(ids))  # record order must not matter
    edges = [(rng.choice(ids), rng.choice(ids)) for _ in range(rng.choice([0, 50, 300, 700]))]
    got, used = _clusters(shuffled, edges)
    assert used == mapping
    assert got == _search(ids, edges)


def test_same_labels_as_the_sql_components() -> None:
    rng = random.Random(9)
    ids = SPARSE
    edges = [(rng.choice(ids), rng.choice(ids)) for _ in range(350)]
    got, _ = _clusters(ids, edges)
    con = _load(ids, edges)
    cc = connected_components(con, "SELECT a, b FROM e", _temp)
    sql = dict(con.sql(f'SELECT node, label FROM "{cc.table}"').fetchall())
    con.close()
    assert got == {x: sql.get(x, x) for x in ids}
    assert len(set(got.values())) < len(ids)  # the graph does merge records


@pytest.mark.parametrize("shape", ["chain", "star", "zigzag"])
def test_shapes_collapse_to_their_smallest_record(shape: str) -> None:
    ids = DENSE[:64]
    if shape == "chain":
        edges = list(itertools.pairwise(reversed(ids)))
    elif shape == "star":
        edges = [(ids[-1], x) for x in ids[:-1]]
    else:  # a path through 1, 0, 3, 2, 5, 4, ...: local minima alternate
        edges = list(itertools.pairwise(ids[i ^ 1] for i in range(64)))
    got, _ = _clusters(DENSE[:80], edges)
    assert got == {x: ids[0] if x in ids else x for x in DENSE[:80]}


@pytest.mark.parametrize(
    ("ids", "stranger"), [(DENSE, 2000), (DENSE[::2], 1001), (SPARSE, 10**12 + 1)]
)
def test_an_edge_to_an_unknown_record_is_refused(ids: list[int], stranger: int) -> None:
    con = _load(ids, [(ids[0], ids[1]), (ids[2], stranger)])
    with pytest.raises(ValueError, match="closure: edges name record ids that are not among"):
        record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    con.close()


def test_no_records_and_no_edges() -> None:
    got, _ = _clusters(DENSE[:5], [])
    assert got == {x: x for x in DENSE[:5]}
    con = _load([], [])
    assert record_clusters(con, "SELECT a, b FROM e", '"r"', _temp).clusters.num_rows == 0
    con.close()
    con = _load([], [(1, 2)])
    with pytest.raises(ValueError, match="not among the records"):
        record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    con.close()


def test_smallest_in_component_leaves_unlinked_nodes_alone() -> None:
    ia, ib = np.array([5, 9, 7]), np.array([3, 5, 9])
    assert smallest_in_component(ia, ib, 11).tolist() == [0, 1, 2, 3, 4, 3, 6, 3, 8, 3, 10]


def test_null_ids_are_refused_and_narrow_ids_accepted() -> None:
    con = connect(threads=1)
    con.sql("CREATE TABLE r AS SELECT * FROM (VALUES (1::INTEGER), (2), (3)) t(record_id)")
    con.sql("CREATE TABLE e AS SELECT * FROM (VALUES (1::INTEGER, 3::INTEGER)) t(a, b)")
    got = record_clusters(con, "SELECT a, b FROM e", '"r"', _temp).clusters.to_pylist()
    assert {r["record_id"]: r["cluster_id"] for r in got} == {1: 1, 2: 2, 3: 1}
    con.sql("INSERT INTO r VALUES (NULL)")
    with pytest.raises(ValueError, match="closure: record ids hold NULL"):
        record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    con.close()


@pytest.mark.parametrize("kind", ["VARCHAR", "DOUBLE"])
def test_ids_that_are_not_integers_are_refused(kind: str) -> None:
    con = connect(threads=1)
    con.sql(f"CREATE TABLE r AS SELECT CAST(x AS {kind}) AS record_id FROM range(1, 4) t(x)")
    con.sql("CREATE TABLE e AS SELECT * FROM (VALUES (1::BIGINT, 3::BIGINT)) t(a, b)")
    with pytest.raises(ValueError, match="closure: record ids must be integers"):
        record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    con.close()


def test_an_unknown_id_is_named_in_the_error() -> None:
    con = _load(DENSE[::2], [(1000, 1003), (1004, 1005), (1006, 1008)])
    with pytest.raises(ValueError, match=r"\(2 in one batch of 3, e\.g\. 1003\)"):
        record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    con.close()


def _smallest_by_search(ia: np.ndarray, ib: np.ndarray, n: int) -> list[int]:
    label = _search(list(range(n)), list(zip(ia.tolist(), ib.tolist(), strict=True)))
    return [label[x] for x in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 100])
def test_union_find_matches_a_graph_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        n = int(rng.integers(1, 80))
        m = int(rng.integers(0, 120))
        ia, ib = rng.integers(0, n, m), rng.integers(0, n, m)
        smallest = smallest_in_component(ia, ib, n)
        assert smallest.dtype == np.int32
        got = smallest.tolist()
        assert got == _smallest_by_search(ia, ib, n), (n, ia.tolist(), ib.tolist())


@pytest.mark.parametrize("reverse", [False, True])
def test_stars_around_their_largest_node_and_backward_paths_are_closed(reverse: bool) -> None:
    # A star around its *largest* node (every edge re-roots a smaller record under
    # the same root) chained with a path numbered against the linking direction.
    n = 400
    star = [(n - 1, x) for x in range(0, 200)]
    path = [(x, x + 1) for x in range(200, n - 2, 2)] + [
        (x + 1, x + 2) for x in range(200, n - 2, 2)
    ]
    edges = star + path + [(n - 2, n - 1)]
    if reverse:
        edges = [(b, a) for a, b in reversed(edges)]
    ia = np.array([a for a, _ in edges])
    ib = np.array([b for _, b in edges])
    got = smallest_in_component(ia, ib, n)
    assert got.tolist() == [0] * n
    assert got.tolist() == _smallest_by_search(ia, ib, n)


def test_star_edges_of_several_rules_close_into_their_components() -> None:
    # As the cascade makes them: per rule, every record of a key group to the group's
    # smallest record; groups of different rules overlap into chains.
    rng = np.random.default_rng(7)
    n = 5000
    ia_parts, ib_parts = [], []
    for _rule in range(4):
        group = rng.integers(0, 1200, n)
        order = np.lexsort((np.arange(n), group))
        first = np.r_[True, group[order][1:] != group[order][:-1]]
        root = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        smallest = order[root]
        keep = order != smallest
        ia_parts.append(order[keep])
        ib_parts.append(smallest[keep])
    ia, ib = np.concatenate(ia_parts), np.concatenate(ib_parts)
    assert smallest_in_component(ia, ib, n).tolist() == _smallest_by_search(ia, ib, n)


@pytest.mark.parametrize(("ids", "mapping"), [(SPARSE, "sorted"), (DENSE, "offset")])
def test_ids_and_edges_read_in_many_chunks(
    ids: list[int], mapping: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10M ids arrive from DuckDB in many Arrow chunks; here 500 ids in chunks of 7.
    import bench.sql.graph_memory as graph_memory

    real_query = graph_memory.query

    def small_chunks(*args: object, **kwargs: object):
        table = real_query(*args, **kwargs)
        return pa.Table.from_batches(table.to_batches(max_chunksize=7), table.schema)

    monkeypatch.setattr(graph_memory, "query", small_chunks)
    rng = random.Random(4)
    shuffled = rng.sample(ids, len(ids))
    edges = [(rng.choice(ids), rng.choice(ids)) for _ in range(400)]
    con = _load(shuffled, edges)
    res = record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    assert res.clusters.column("cluster_id").num_chunks > 1
    assert res.diagnostics["node_index"] == mapping
    got = {r["record_id"]: r["cluster_id"] for r in res.clusters.to_pylist()}
    assert got == _search(ids, edges)
    con.sql(f"INSERT INTO e VALUES ({ids[3]}, {ids[-1] + 1})")
    with pytest.raises(ValueError, match="not among the records"):
        record_clusters(con, "SELECT a, b FROM e", '"r"', _temp)
    con.close()
