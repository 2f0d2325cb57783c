"""Connected components of records in memory: the DuckDB engine's fast closure.

:func:`record_clusters` labels *every* record with the smallest record id of its
component under an edge list: the clusters a closure matcher returns. On DuckDB the ids
and edges are read into numpy arrays and closed by a union-find
(:mod:`bench.sql.union_find`, compiled with numba); on other engines (Spark) it runs
the SQL algorithm of :mod:`bench.sql.graph` and joins the labels back to the records,
so a matcher calls one function on every engine.

:func:`linked_clusters` (DuckDB) is the same closure fed by rules rather than one edge
list: a :class:`KeyLinks` rule hands over each record's key and the union-find groups
equal keys itself (a hash table on the key bytes), an :class:`EdgeLinks` rule its
pairs. The cascade's rules without a time window thus skip the SQL aggregate on the
key and the join back to every record, which were about half of each rule's time, and
DuckDB normalises the next rule's keys while the last ones are grouped (one worker
thread; the kernels release the GIL).

Measured on the cascade's 10M records (9,947,615; ~12.7M key rows over nine rules):
3.7-4.8 s for the whole match on two cores, against ~6 s for the rules' SQL edges alone
and ~2 s more for the previous in-memory closure (hooking and pointer jumping over 6.6M
star edges); the partition is identical, record for record. Before
that, the SQL rounds (min neighbour, pointer jumping, contraction, each a join over
the edges) took ~3 s and the join of their labels back to every record ~1 s.

Node indices: record ids are mapped to ``0..n-1`` in increasing order, by offset when the
ids are dense (``max - min`` at most twice their count, as generated datasets number
them) and by a sorted search otherwise, so the smallest index of a component is its
smallest record id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from bench.sql.engine import Target, query, quote_ident
from bench.sql.graph import clusters_sql, connected_components
from bench.sql.interface import Engine

if TYPE_CHECKING:
    from bench.sql.union_find import UnionFind

__all__ = [
    "EdgeLinks",
    "KeyLinks",
    "RecordClusters",
    "linked_clusters",
    "load_closure_kernels",
    "record_clusters",
    "smallest_in_component",
]

log = logging.getLogger(__name__)

q = quote_ident


@dataclass
class RecordClusters:
    """The clusters of every record and how they were closed.

    Attributes
    ----------
    clusters
        ``(record_id, cluster_id)`` for every record: an Arrow table (DuckDB) or the
        name of a view on the engine.
    method
        ``"memory"`` (:mod:`bench.sql.union_find`) or ``"sql"``
        (:mod:`bench.sql.graph`).
    diagnostics
        In memory: records, rows read from the links (key rows and edges), how ids
        were indexed (``offset`` or ``sorted``), rules regrouped by key bytes after a
        hash collision, seconds in all; in SQL: the components' own
        diagnostics (:meth:`bench.sql.graph.ComponentsResult.diagnostics`).
    """

    clusters: pa.Table | str
    method: str
    diagnostics: dict[str, float | int | str]


def _int64_chunks(column: pa.ChunkedArray, what: str) -> list[np.ndarray]:
    """A column of ids as int64 numpy views of its Arrow chunks (no copy for BIGINT).

    Reads the Arrow buffers directly: pyarrow's own ``to_numpy`` imports pandas on first
    use, half a second a process. The chunks are kept apart: one array of 10M ids would
    be 80 MB of fresh memory, and first touches of fresh memory are a large part of the
    closure's time here. NULLs and ids outside BIGINT are refused.
    """
    if column.null_count:
        msg = f"{what} hold NULL"
        raise ValueError(msg)
    if not pa.types.is_integer(column.type):
        msg = f"{what} must be integers (BIGINT), got {column.type}"
        raise ValueError(msg)
    if column.type != pa.int64():
        try:
            column = column.cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            msg = f"{what} must be BIGINT ({column.type}: {exc})"
            raise ValueError(msg) from exc
    return [_values(c, np.int64) for c in column.chunks if len(c)]


def _values(chunk: pa.Array, dtype: type[np.number]) -> np.ndarray:
    """The values of a fixed-width Arrow array without NULLs, as a numpy view."""
    size = np.dtype(dtype).itemsize
    return np.frombuffer(
        chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * size
    )


@dataclass
class _NodeIndex:
    """Record ids mapped to nodes ``0..n-1`` in increasing order.

    ``sorted_ids`` is ``None`` for the dense (offset) mapping, where node ``i`` is id
    ``lo + i``, else the sorted ids the nodes stand for.
    """

    lo: int
    n: int
    sorted_ids: np.ndarray | None
    known: np.ndarray | None = None  # offset mapping: which nodes are record ids

    @classmethod
    def of(cls, chunks: list[np.ndarray]) -> _NodeIndex:
        """Offset mapping when ``max - min`` is at most about twice the count, else sorted."""
        count = sum(len(c) for c in chunks)
        lo = min(int(c.min()) for c in chunks)
        span = max(int(c.max()) for c in chunks) - lo + 1
        if span <= 2 * count + 1024:
            index = cls(lo, span, None, np.zeros(span, dtype=bool))
            for c in chunks:
                index.known[c - lo] = True  # type: ignore[index]
            return index
        uniq = np.sort(np.concatenate(chunks))
        return cls(lo, len(uniq), uniq)

    @property
    def kind(self) -> type[np.signedinteger]:
        """Integer type of node indices (the union-find's, which is loaded by then)."""
        from bench.sql.union_find import index_type

        return index_type(self.n)

    def nodes(self, ids: np.ndarray) -> np.ndarray:
        """Node of every id (ids must be record ids)."""
        return ids - self.lo if self.sorted_ids is None else np.searchsorted(self.sorted_ids, ids)

    def known_nodes(self, ids: np.ndarray) -> np.ndarray | None:
        """Node of every id, or ``None`` if some id is not a record id."""
        nodes = self.nodes(ids)
        if len(nodes) == 0:
            return nodes
        if nodes.min() < 0 or nodes.max() >= self.n:
            return None
        if self.sorted_ids is not None:
            return nodes if np.array_equal(self.sorted_ids[nodes], ids) else None
        return nodes if self.known[nodes].all() else None  # type: ignore[index]

    def unknown(self, ids: np.ndarray) -> np.ndarray:
        """The ids that are not record ids (for error messages)."""
        nodes = self.nodes(ids)
        inside = (nodes >= 0) & (nodes < self.n)
        known = np.zeros(len(ids), dtype=bool)
        if self.sorted_ids is not None:
            known[inside] = self.sorted_ids[nodes[inside]] == ids[inside]
        else:
            known[inside] = self.known[nodes[inside]]  # type: ignore[index]
        return ids[~known]

    def ids(self, nodes: np.ndarray) -> np.ndarray:
        """The record id of every node, as int64."""
        if self.sorted_ids is None:
            return nodes.astype(np.int64) + self.lo
        return self.sorted_ids[nodes]


def _edge_nodes(chunks: list[np.ndarray], index: _NodeIndex, what: str) -> np.ndarray:
    """The nodes of one edge column, in one array of node indices; unknown ids refused."""
    out = np.empty(sum(len(c) for c in chunks), dtype=index.kind)
    pos = 0
    for c in chunks:
        nodes = index.known_nodes(c)
        if nodes is None:
            unknown = index.unknown(c)
            msg = (
                f"{what} name record ids that are not among the records "
                f"({len(unknown)} in one batch of {len(c)}, e.g. {int(unknown[0])})"
            )
            raise ValueError(msg)
        out[pos : pos + len(c)] = nodes
        pos += len(c)
    return out


def smallest_in_component(ia: np.ndarray, ib: np.ndarray, n: int) -> np.ndarray:
    """For every node ``0..n-1``, the smallest node of its component under edges ``(ia, ib)``.

    Returns node indices as int32 when ``n < 2**31``, else int64.
    """
    from bench.sql.union_find import UnionFind

    forest = UnionFind(n)
    forest.link_pairs(ia, ib)
    return forest.roots(np.arange(n, dtype=forest.kind))


@dataclass(frozen=True)
class KeyLinks:
    """Records that share a key value are linked: one rule of a closure.

    Attributes
    ----------
    sql
        Query with columns ``record_id`` and ``key`` (VARCHAR; rows whose key is NULL
        link nothing).
    cap
        Keys held by more than ``cap`` rows link nothing (``None``: no cap).
    label
        Names the rule in errors and diagnostics.
    """

    sql: str
    cap: int | None = None
    label: str = "keys"

    def __post_init__(self) -> None:
        if self.cap is not None and (not isinstance(self.cap, int) or self.cap < 1):
            msg = f"{self.label}: cap must be a positive integer or None, got {self.cap!r}"
            raise ValueError(msg)


@dataclass(frozen=True)
class EdgeLinks:
    """Linked record pairs: a query with BIGINT columns ``a`` and ``b``."""

    sql: str
    label: str = "edges"


def _nodes_of(column: pa.ChunkedArray, index: _NodeIndex, what: str) -> np.ndarray:
    return _edge_nodes(_int64_chunks(column, what), index, what)


def _read_links(
    con: Target, link: KeyLinks | EdgeLinks, index: _NodeIndex, step: str
) -> tuple[Callable[[UnionFind], None], int]:
    """Run one link query; return what joins its rows into the forest, and its rows."""
    what = f"{step}: {link.label}"
    if isinstance(link, KeyLinks):
        rows = query(
            con,
            # No WHERE on the key: DuckDB would push it into the scan and normalise
            # every key twice (once to filter, once to return it); NULLs link nothing.
            f"SELECT record_id, key, hash(key) AS check_hash FROM ({link.sql})",
            step=what,
        )
        from bench.sql.union_find import is_text

        nodes = _nodes_of(rows.column("record_id"), index, f"{what}: record_id")
        keys = rows.column("key")
        if not is_text(keys.type):  # checked here, where the error can name the rule
            msg = f"{what}: keys must be VARCHAR, got {keys.type}"
            raise ValueError(msg)
        checks = np.concatenate(
            [_values(c, np.uint64) for c in rows.column("check_hash").chunks if len(c)]
            or [np.zeros(0, np.uint64)]
        )

        def apply(forest: UnionFind) -> None:
            forest.link_keys(nodes, keys, checks, cap=link.cap)

        return apply, len(nodes)
    rows = query(con, link.sql, step=what)
    a = _nodes_of(rows.column("a"), index, what)
    b = _nodes_of(rows.column("b"), index, what)

    def apply_pairs(forest: UnionFind) -> None:
        forest.link_pairs(a, b)

    return apply_pairs, len(a)


def _in_memory(
    con: Target, links: list[KeyLinks | EdgeLinks], ids_sql: str, *, step: str
) -> tuple[pa.Table, dict[str, float | int | str]]:
    t0 = time.perf_counter()
    ids = query(con, ids_sql, step=f"{step}: record ids").column(0)
    id_chunks = _int64_chunks(ids, f"{step}: record ids")
    if not id_chunks:
        for link in links:
            empty = query(
                con, f"SELECT count(*) AS n FROM ({link.sql})", step=f"{step}: {link.label}"
            )
            if empty.column(0)[0].as_py():
                msg = f"{step}: {link.label} name record ids that are not among the records (there are none)"
                raise ValueError(msg)
        return pa.table({"record_id": ids, "cluster_id": ids}), {"records": 0, "rows_linked": 0}
    from bench.sql.union_find import UnionFind

    index = _NodeIndex.of(id_chunks)
    forest = UnionFind(index.n)
    rows = 0
    # DuckDB reads the next rule while the forest takes in the last one (the kernels
    # release the GIL): one worker, and a rule is handed over only once the one before
    # it is in, so at most two rules' keys are held (one read, one being joined).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="idbench-closure") as pool:
        pending: Future[None] | None = None
        for link in links:
            apply, n_rows = _read_links(con, link, index, step)
            rows += n_rows
            if pending is not None:
                pending.result()
            pending = pool.submit(apply, forest)
            del apply
        if pending is not None:
            pending.result()
    # Chunk by chunk, from the buffers as _int64_chunks reads (pa.array(numpy) would
    # import pandas): only the output column is fresh memory.
    labels = []
    for chunk in id_chunks:
        cluster = np.ascontiguousarray(index.ids(forest.roots(index.nodes(chunk))), dtype=np.int64)
        labels.append(
            pa.Array.from_buffers(pa.int64(), len(cluster), [None, pa.py_buffer(cluster)])
        )
    out = pa.table({"record_id": ids, "cluster_id": pa.chunked_array(labels, pa.int64())})
    diag: dict[str, float | int | str] = {
        "records": len(ids),
        "rows_linked": rows,
        "node_index": "offset" if index.sorted_ids is None else "sorted",
        "exact_regroups": forest.exact_regroups,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return out, diag


def load_closure_kernels() -> None:
    """Load the in-memory closure's compiled kernels now (numba: ~1 s per process).

    :mod:`bench.api` does not import them, so that a process that never closes
    records in memory does not pay for numba; a matcher that does calls this when its
    module is imported, as it imports its other libraries.
    """
    import bench.sql.union_find  # noqa: F401 - compiles or loads the kernels on import


def linked_clusters(
    con: Target,
    links: Sequence[KeyLinks | EdgeLinks],
    records: str,
    *,
    step: str = "closure",
) -> RecordClusters:
    """``(record_id, cluster_id)`` of every record under key and edge links (DuckDB).

    The closure of :func:`record_clusters`, fed by rules: each :class:`KeyLinks` links
    the records that share a key (grouped in memory, :meth:`UnionFind.link_keys`, no
    aggregate and join in SQL), each :class:`EdgeLinks` the pairs it lists. The
    queries run one after the other while the previous one is joined into the forest.

    Parameters
    ----------
    con
        A DuckDB connection or the DuckDB engine.
    links
        The rules' links, in any order (the components do not depend on it).
    records
        Quoted name of the records table (column ``record_id``, ids unique).
    step
        Names the step in errors.
    """
    engine = con if isinstance(con, Engine) else None
    if engine is not None and engine.kind != "duckdb":
        msg = f"{step}: linked_clusters runs on DuckDB (engine {engine.kind}); use record_clusters"
        raise ValueError(msg)
    target = engine.con if engine is not None else con  # type: ignore[attr-defined]
    if any(isinstance(link, KeyLinks) for link in links):
        collation = (
            query(
                target,
                "SELECT current_setting('default_collation') AS c",
                step=f"{step}: collation",
            )
            .column(0)[0]
            .as_py()
        )
        if collation:
            msg = (
                f"{step}: keys are grouped by their bytes, but the connection compares text "
                f"with default_collation {collation!r}: reset it, or compare keys in SQL"
            )
            raise ValueError(msg)
    table, diag = _in_memory(target, list(links), f"SELECT record_id FROM {records}", step=step)
    return RecordClusters(clusters=table, method="memory", diagnostics=diag)


def record_clusters(
    con: Target,
    edges_sql: str,
    records: str,
    temp_name: Callable[[str], str],
    *,
    linkable: str | None = None,
    oriented: bool = False,
    step: str = "closure",
) -> RecordClusters:
    """``(record_id, cluster_id)`` of every record: the smallest id of its component.

    Parameters
    ----------
    con
        A DuckDB connection or an engine.
    edges_sql
        Query returning BIGINT columns ``a`` and ``b``: record ids of linked records
        (order, duplicates and self-loops do not matter).
    records
        Quoted name of the records table (column ``record_id``, ids unique).
    temp_name
        Namespaces intermediate objects (``MatchContext.temp_name``).
    linkable
        SQL condition on the records that every edge endpoint satisfies; records
        failing it pass straight through as singletons on the SQL path (no join).
    oriented
        Every edge has ``a < b`` (see :func:`bench.sql.graph.connected_components`).
    step
        Names the step in errors.
    """
    engine = con if isinstance(con, Engine) else None
    if engine is None or engine.kind == "duckdb":
        return linked_clusters(con, [EdgeLinks(edges_sql)], records, step=step)
    cc = connected_components(con, edges_sql, temp_name, oriented=oriented)
    view = temp_name("record_clusters")
    engine.create_view(view, clusters_sql(records, q(cc.table), linkable), step=f"{step}: clusters")
    return RecordClusters(clusters=view, method="sql", diagnostics=cc.diagnostics())
