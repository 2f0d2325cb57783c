"""The compiled union-find (``bench.sql.union_find``): key grouping and components."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pyarrow as pa
import pytest

from bench.sql.union_find import UnionFind, group_rows

#: Keys that look alike byte-wise: prefixes, case, accents, spaces, empty, long.
ALPHABET = ["a", "b", "A", "é", "e\u0301", " ", "@", "ß", "日", "0"]


def _keys(rng: random.Random, n: int, distinct: int) -> list[str | None]:
    pool = ["".join(rng.choices(ALPHABET, k=rng.randint(0, 6))) for _ in range(distinct)]
    pool.append("x" * 300)
    return [None if rng.random() < 0.1 else rng.choice(pool) for _ in range(n)]


def _independent(keys: list[str | None]) -> np.ndarray:
    """A second hash of every key, as DuckDB's ``hash`` is to the FNV-1a one."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b((k or "").encode(), digest_size=8).digest(), "little")
            for k in keys
        ],
        dtype=np.uint64,
    )


def _first_by_dict(keys: list[str | None]) -> list[int]:
    seen: dict[str, int] = {}
    return [i if k is None else seen.setdefault(k, i) for i, k in enumerate(keys)]


@pytest.mark.parametrize("seed", range(6))
def test_rows_are_grouped_by_their_key_bytes(seed: int) -> None:
    rng = random.Random(seed)
    keys = _keys(rng, rng.choice([1, 50, 2000]), rng.choice([1, 5, 300]))
    first, regrouped = group_rows(pa.array(keys, pa.string()), _independent(keys))
    assert first.tolist() == _first_by_dict(keys)
    assert not regrouped


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string(), pa.string_view()])
def test_chunked_sliced_and_wide_string_columns(kind: pa.DataType) -> None:
    rng = random.Random(3)
    keys = _keys(rng, 900, 40)
    whole = pa.array(["pad", *keys], kind).slice(1)  # an offset into the buffers
    chunked = pa.chunked_array([whole.slice(0, 400), whole.slice(400)], kind)
    for column in (whole, chunked):
        first, _ = group_rows(column, _independent(keys))
        assert first.tolist() == _first_by_dict(keys)


def test_colliding_hashes_are_told_apart_by_the_check_then_by_bytes() -> None:
    # Every key gets the same 64-bit hash: the independent check disagrees inside the
    # one hash group, so the rows are grouped again comparing their bytes.
    keys = ["ann@x.com", "bob@x.com", "ann@x.com", "", "bob@x.com", None, ""]
    first, regrouped = group_rows(
        pa.array(keys), _independent(keys), hashes=np.full(len(keys), 42, dtype=np.uint64)
    )
    assert regrouped
    assert first.tolist() == [0, 1, 0, 3, 1, 5, 3]


def test_keys_that_agree_on_both_hashes_are_one_key() -> None:
    # The documented limit: a collision of both 64-bit hashes is not seen.
    keys = ["ann", "bob"]
    first, regrouped = group_rows(
        pa.array(keys), np.ones(2, dtype=np.uint64), hashes=np.full(2, 42, dtype=np.uint64)
    )
    assert first.tolist() == [0, 0] and not regrouped


def test_non_string_keys_and_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="keys must be strings, got int64"):
        group_rows(pa.array([1, 2]), np.zeros(2, dtype=np.uint64))
    with pytest.raises(ValueError, match=r"keys \(2\) and checks \(3\) differ"):
        group_rows(pa.array(["a", "b"]), np.zeros(3, dtype=np.uint64))
    with pytest.raises(ValueError, match=r"keys \(2\) and nodes \(1\) differ"):
        UnionFind(4).link_keys(np.zeros(1), pa.array(["a", "b"]), np.zeros(2, dtype=np.uint64))


def _search(n: int, groups: list[list[int]]) -> list[int]:
    """Reference components: repeated relaxation to the smallest member."""
    label = list(range(n))
    changed = True
    while changed:
        changed = False
        for group in groups:
            low = min(label[x] for x in group)
            for x in group:
                if label[x] != low:
                    label[x], changed = low, True
    return [min(y for y in range(n) if label[y] == label[x]) for x in range(n)]


@pytest.mark.parametrize("seed", range(8))
def test_keys_pairs_and_caps_close_into_components(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 120)
    forest = UnionFind(n)
    groups: list[list[int]] = []
    for _ in range(rng.randint(1, 4)):  # rules on keys, some capped
        rows = rng.randint(0, 2 * n)
        nodes = np.array([rng.randrange(n) for _ in range(rows)], dtype=np.int64)
        keys = [None if rng.random() < 0.2 else f"k{rng.randrange(max(1, n // 3))}" for _ in nodes]
        cap = rng.choice([None, 1, 2, 3])
        forest.link_keys(nodes, pa.array(keys, pa.string()), _independent(keys), cap=cap)
        members: dict[str, list[int]] = {}
        for node, key in zip(nodes.tolist(), keys, strict=True):
            if key is not None:
                members.setdefault(key, []).append(node)
        groups += [g for g in members.values() if cap is None or len(g) <= cap]
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, n))]
    forest.link_pairs(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]))
    groups += [[a, b] for a, b in pairs]
    roots = forest.roots(np.arange(n))
    assert roots.dtype == np.int32
    assert roots.tolist() == _search(n, groups)


def test_a_closure_runs_on_the_kernels_loaded_at_import() -> None:
    # numba compiles one kernel per argument type: a closure passing other array
    # types (writable or read-only, int64 nodes) would compile inside the match.
    from bench.sql import union_find
    from bench.sql.engine import connect
    from bench.sql.graph_memory import EdgeLinks, KeyLinks, linked_clusters

    kernels = [getattr(union_find, name) for name in dir(union_find) if name.startswith("_")]
    kernels = [k for k in kernels if hasattr(k, "signatures")]
    loaded = {k.__name__: list(k.signatures) for k in kernels}
    con = connect(threads=2)
    con.sql(
        "CREATE TABLE r AS SELECT 10 * x AS record_id, 'k' || (x % 7) AS key "
        "FROM range(1, 2000) t(x)"
    )
    con.sql("UPDATE r SET key = NULL WHERE record_id % 30 = 0")
    for ids in ("dense", "sparse"):
        if ids == "sparse":
            con.sql("UPDATE r SET record_id = record_id * 100003")
        links = [
            KeyLinks("SELECT record_id, key FROM r", cap=500),
            KeyLinks("SELECT record_id, key FROM r"),
            EdgeLinks("SELECT min(record_id) AS a, max(record_id) AS b FROM r"),
        ]
        out = linked_clusters(con, links, "r").clusters
        assert out.num_rows == 1999
    con.close()
    assert {k.__name__: list(k.signatures) for k in kernels} == loaded
    assert sum(bool(s) for s in loaded.values()) == 5  # the five kernels, one type each


def test_bad_caps_nodes_and_collations_are_refused() -> None:
    from bench.sql.engine import connect
    from bench.sql.graph_memory import KeyLinks, linked_clusters

    for cap in (0, -1, 2.5):
        with pytest.raises(ValueError, match="cap must be a positive integer or None"):
            KeyLinks("SELECT 1", cap=cap)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"nodes must lie in 0\.\.2, got 3\.\.3"):
        UnionFind(3).link_pairs(np.array([1]), np.array([3]))
    with pytest.raises(ValueError, match=r"nodes must lie in 0\.\.2, got -1\.\.1"):
        UnionFind(3).link_keys(np.array([-1, 1]), pa.array(["a", "a"]), np.zeros(2, np.uint64))
    con = connect(threads=1)
    con.sql("CREATE TABLE r AS SELECT * FROM (VALUES (1, 'Ann'), (2, 'ann')) t(record_id, key)")
    con.sql("SET default_collation = 'nocase'")
    with pytest.raises(ValueError, match="default_collation 'nocase'"):
        linked_clusters(con, [KeyLinks("SELECT record_id, key FROM r")], "r")
    con.sql("RESET default_collation")
    got = linked_clusters(con, [KeyLinks("SELECT record_id, key FROM r")], "r").clusters
    assert got.column("cluster_id").to_pylist() == [1, 2]  # bytes differ: two keys
    with pytest.raises(ValueError, match="closure: keys: record_id hold NULL"):
        linked_clusters(con, [KeyLinks("SELECT NULL::BIGINT AS record_id, 'x' AS key")], "r")
    con.close()


def test_kernels_compile_without_a_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.sql import union_find

    real = union_find.njit

    def no_locator(**options: object):
        if options.get("cache"):
            msg = "cannot cache function 'f': no locator available for file 'f.py'"
            raise RuntimeError(msg)
        return real(**options)

    monkeypatch.setattr(union_find, "njit", no_locator)

    def double(x: np.ndarray) -> None:
        for i in range(len(x)):
            x[i] *= 2

    kernel = union_find._kernel()(double)
    x = np.arange(3)
    kernel(x)
    assert x.tolist() == [0, 2, 4]
