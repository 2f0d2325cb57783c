"""Connected components of records in memory: the DuckDB engine's fast closure.

:func:`record_clusters` labels *every* record with the smallest record id of its
component under an edge list: the clusters a closure matcher returns. On DuckDB the edges
and ids are read into numpy arrays once and closed by vectorised hooking and pointer
jumping (:func:`smallest_in_component`: the cascade's star edges close in three or four
rounds; what is left after a few rounds goes to scipy's linear-time components); on other engines
(Spark) it runs the SQL algorithm of :mod:`bench.sql.graph` and joins the labels back
to the records, so a matcher calls one function on every engine.

Why in memory on DuckDB: at 10M records (6.6M star edges of the cascade's rules) the SQL
rounds (min neighbour, pointer jumping, contraction, each a join over the edges) took
~3 s and the join of the labels back to every record ~1 s on two cores; reading the
edges, closing them and writing the cluster of every record take 2.0-2.5 s together
here in a fresh process, on one core, and give the same labels (tested against the SQL algorithm and a graph search
on chains, stars and random graphs). scipy's components alone took ~1 s more: building
its sparse matrix and the transpose it searches cost more than the hooking rounds. numpy
memory while closing (``tracemalloc``, 2M records, 3.6M star edges): 166 MiB at peak,
about 13 bytes per record and 42 per edge, the output column included and the Arrow
inputs not; fresh memory is kept small on purpose, since first touches of fresh pages
are a large part of the time on this machine class.

Node indices: record ids are mapped to ``0..n-1`` in increasing order, by offset when the
ids are dense (``max - min`` at most twice their count, as generated datasets number
them) and by a sorted search otherwise, so the smallest index of a component is its
smallest record id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from bench.sql.engine import Target, query, quote_ident
from bench.sql.graph import clusters_sql, connected_components
from bench.sql.interface import Engine

__all__ = ["RecordClusters", "component_minima", "record_clusters", "smallest_in_component"]

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
        ``"memory"`` (numpy, scipy for what hooking leaves) or ``"sql"``
        (:mod:`bench.sql.graph`).
    diagnostics
        In memory: record and edge counts, how ids were indexed (``offset`` or
        ``sorted``), seconds reading and in all; in SQL: the components' own
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
    return [
        np.frombuffer(c.buffers()[1], dtype=np.int64, count=len(c), offset=c.offset * 8)
        for c in column.chunks
        if len(c)
    ]


def _index_type(n: int) -> type[np.signedinteger]:
    """The integer type that holds node indices ``0..n-1``."""
    return np.int32 if n < 2**31 else np.int64


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
        """Integer type of node indices."""
        return _index_type(self.n)

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


def component_minima(labels: np.ndarray, n_components: int) -> np.ndarray:
    """The smallest node of every component, given each node's component label.

    scipy numbers components in the order it meets them scanning nodes upwards, so the
    first node carrying each new label is that component's minimum. The nodes where the
    label exceeds every earlier label are such first occurrences; when there is one for
    every label, in label order, they are the minima. Should a scipy version number
    components otherwise, the minima are computed with ``minimum.at`` instead.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.empty_like(labels)
    before[0] = -1
    np.maximum.accumulate(labels[:-1], out=before[1:])
    firsts = np.flatnonzero(labels > before)
    if len(firsts) == n_components and np.array_equal(labels[firsts], np.arange(n_components)):
        return firsts
    log.debug("component labels not in first-node order; computing minima directly")
    minima = np.full(n_components, n, dtype=np.int64)
    np.minimum.at(minima, labels, np.arange(n, dtype=np.int64))
    return minima


def _compress(parent: np.ndarray) -> None:
    """Point every node of a forest straight at its root, in place (pointer jumping).

    Each pass replaces a node's parent by its grandparent, and only nodes whose parent
    is not yet a root take the next pass.
    """
    idx = np.flatnonzero(parent[parent] != parent)
    while len(idx):
        up = parent[parent[idx]]
        parent[idx] = up
        idx = idx[parent[up] != up]


def _close_rest(parent: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> None:
    """Join the trees that edges between roots ``pa`` and ``pb`` still connect, in place.

    The roots and those edges form a (usually small) graph; scipy's linear-time
    components close it, and each root is hooked to the smallest root of its component.
    scipy is imported here, not with the module: importing it costs ~0.3 s and ~25 MB in
    every process that imports :mod:`bench.api`, and hooking usually leaves nothing.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    roots = np.unique(np.concatenate([pa, pb]))
    ca, cb = np.searchsorted(roots, pa), np.searchsorted(roots, pb)
    graph = csr_matrix((np.ones(len(ca), dtype=np.int8), (ca, cb)), shape=(len(roots), len(roots)))
    n_comp, labels = scipy_components(graph, directed=False)
    parent[roots] = roots[component_minima(labels, n_comp)][labels]
    _compress(parent)


#: Hooking rounds before the rest of the graph goes to scipy's components.
HOOKING_ROUNDS = 4


def smallest_in_component(
    ia: np.ndarray, ib: np.ndarray, n: int, *, rounds: int = HOOKING_ROUNDS
) -> np.ndarray:
    """For every node ``0..n-1``, the smallest node of its component under edges ``(ia, ib)``.

    Only the nodes that have an edge take part (renumbered in order, so minima stay
    minima); the others are their own component. The linked nodes form a forest in
    which every parent is smaller than its child, so each root is the smallest node of
    its tree. Each round points every node at its root and, for every edge whose ends
    lie in two trees, hooks the larger root under the smaller one (vectorised: where
    several edges hook one root, one of them wins, and the others wait for the next
    round). The cascade's star edges (a key group's records to one of them) closed in
    three rounds on its 10M data and in four on random multi-rule star graphs. The edges
    still between two trees after ``rounds`` rounds are closed by scipy's linear-time
    components over the roots they join, so a graph on which hooking converges slowly
    (a star around its largest node: one hook per round) is handed over after
    ``rounds`` rounds instead of taking hundreds.

    Returns node indices as int32 when ``n < 2**31``, else int64.
    """
    linked = np.zeros(n, dtype=bool)
    linked[ia] = True
    linked[ib] = True
    nodes = np.flatnonzero(linked)
    kind = _index_type(len(nodes))
    compact = np.cumsum(linked, dtype=kind)
    compact -= 1
    a, b = compact[ia], compact[ib]
    del compact
    parent = np.arange(len(nodes), dtype=kind)
    for _ in range(rounds):
        pa, pb = parent[a], parent[b]
        apart = pa != pb
        a, b, pa, pb = a[apart], b[apart], pa[apart], pb[apart]
        if not len(a):
            break
        parent[np.maximum(pa, pb)] = np.minimum(pa, pb)
        _compress(parent)
    else:
        pa, pb = parent[a], parent[b]
        apart = pa != pb
        if apart.any():
            _close_rest(parent, pa[apart], pb[apart])
    smallest = np.arange(n, dtype=_index_type(n))
    smallest[nodes] = nodes[parent]
    return smallest


def _in_memory(
    con: Target, edges_sql: str, ids_sql: str, *, step: str
) -> tuple[pa.Table, dict[str, float | int | str]]:
    t0 = time.perf_counter()
    ids = query(con, ids_sql, step=f"{step}: record ids").column(0)
    edges = query(con, edges_sql, step=f"{step}: edges")
    id_chunks = _int64_chunks(ids, f"{step}: record ids")
    if not id_chunks:
        if edges.num_rows:
            msg = f"{step}: edges name record ids that are not among the records (there are none)"
            raise ValueError(msg)
        return pa.table({"record_id": ids, "cluster_id": ids}), {"records": 0, "edges": 0}
    a = _int64_chunks(edges.column("a"), f"{step}: edges")
    b = _int64_chunks(edges.column("b"), f"{step}: edges")
    t_read = time.perf_counter() - t0
    index = _NodeIndex.of(id_chunks)
    ia = _edge_nodes(a, index, f"{step}: edges")
    ib = _edge_nodes(b, index, f"{step}: edges")
    n_edges = len(ia)
    del a, b, edges
    smallest = smallest_in_component(ia, ib, index.n)
    del ia, ib
    # Chunk by chunk, from the buffers as _int64_chunks reads (pa.array(numpy) would
    # import pandas): only the output column is fresh memory.
    labels = []
    for chunk in id_chunks:
        cluster = np.ascontiguousarray(index.ids(smallest[index.nodes(chunk)]), dtype=np.int64)
        labels.append(
            pa.Array.from_buffers(pa.int64(), len(cluster), [None, pa.py_buffer(cluster)])
        )
    out = pa.table({"record_id": ids, "cluster_id": pa.chunked_array(labels, pa.int64())})
    diag: dict[str, float | int | str] = {
        "records": len(ids),
        "edges": n_edges,
        "node_index": "offset" if index.sorted_ids is None else "sorted",
        "seconds_read": round(t_read, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return out, diag


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
        target = engine.con if engine is not None else con  # type: ignore[attr-defined]
        table, diag = _in_memory(target, edges_sql, f"SELECT record_id FROM {records}", step=step)
        return RecordClusters(clusters=table, method="memory", diagnostics=diag)
    cc = connected_components(con, edges_sql, temp_name, oriented=oriented)
    view = temp_name("record_clusters")
    engine.create_view(view, clusters_sql(records, q(cc.table), linkable), step=f"{step}: clusters")
    return RecordClusters(clusters=view, method="sql", diagnostics=cc.diagnostics())
