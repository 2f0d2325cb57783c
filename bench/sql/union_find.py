"""Union-find over record nodes, fed by key columns and edge lists: compiled kernels.

The cascade links records that share a normalised key value, rule after rule, and
closes the links transitively. On DuckDB that closure runs here, in memory, on node
indices ``0..n-1`` (record ids in increasing order, :mod:`bench.sql.graph_memory`):

- :meth:`UnionFind.link_keys` takes one rule's keys (an Arrow string column beside the
  records' nodes) and joins every record to the first record holding the same key: a
  hash table on the key bytes replaces the SQL aggregate on the key and the join back
  to every record, which took about half of the rule's time on DuckDB;
- :meth:`UnionFind.link_pairs` joins the two ends of every edge (rules that stay in
  SQL: time windows, and :func:`~bench.sql.graph_memory.record_clusters` edge lists);
- :meth:`UnionFind.roots` gives every node the smallest node of its component.

The forest keeps every parent smaller than its child (the larger root is hooked under
the smaller), so a root is its component's smallest node; finds halve their paths.

Keys are grouped by a 64-bit FNV-1a hash of their bytes. Two different keys with the
same hash are told apart by a second, independent hash the caller passes (DuckDB's
``hash`` of the key): a group whose rows disagree on it is a collision, and the rule
is then grouped again comparing the key bytes themselves. Two keys are thus merged
wrongly only if both 64-bit hashes collide (about 1e-25 for ten million keys).

The kernels are compiled by numba and cached beside this module (or in numba's user
cache); importing this module loads them for the one set of argument types a closure
uses (:func:`_warm_up`): ~1.2 s per process with numba's own import and set-up, ~5 s
the first time they are compiled. Loops are split so that independent memory reads
follow each other: random reads cost ~0.2 us each on this machine class when one waits
for the last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
from numba import njit

__all__ = ["UnionFind", "group_rows", "index_type", "is_text"]

log = logging.getLogger(__name__)


def _kernel(**options: str) -> Callable[[Callable[..., Any]], Any]:
    """``njit`` without the GIL, cached beside this module (or in numba's user cache).

    Where neither folder can be written (a read-only install) the kernels are compiled
    in every process instead: a few seconds at import, same results.
    """

    def compile_(fn: Callable[..., Any]) -> Any:
        try:
            return njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError as exc:  # numba: "cannot cache function ...: no locator"
            log.warning("idbench: numba cannot cache %s (%s); compiling it here", fn.__name__, exc)
            return njit(cache=False, nogil=True, **options)(fn)

    return compile_


_FNV_OFFSET = np.uint64(14695981039346656037)
_FNV_PRIME = np.uint64(1099511628211)
#: Set in every stored hash, so that 0 marks an empty slot; the top bit, not the low
#: one, which would leave every even slot empty (slots are taken from the low bits).
_NONZERO = np.uint64(1 << 63)


@_kernel()
def _key_hashes(offsets, data, out):
    """FNV-1a over each key's bytes, mixed, into ``out``; never 0 (0 marks an empty slot)."""
    for i in range(len(out)):
        h = _FNV_OFFSET
        for k in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[k])) * _FNV_PRIME
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
        out[i] = h | _NONZERO


@_kernel(inline="always")
def _same_bytes(offsets, data, i, j):
    start, end, js = offsets[i], offsets[i + 1], offsets[j]
    if offsets[j + 1] - js != end - start:
        return False
    for k in range(end - start):  # noqa: SIM110 - a loop numba compiles, not a generator
        if data[js + k] != data[start + k]:
            return False
    return True


@_kernel()
def _first_of_keys(hashes, valid, offsets, data, checks, table_h, table_r, first, exact):
    """``first[i]``: the first row whose key equals row ``i``'s; the rows in conflict.

    ``hashes`` are the keys' hashes (never 0); rows not ``valid`` (NULL keys) are
    their own first row and link nothing. ``table_h`` (zeros) and ``table_r`` hold
    an open-addressing table of a power-of-two size at least twice the rows. With
    ``exact`` False rows with equal hashes are one key (``offsets`` and ``data`` are not
    read), and the return value counts the rows whose ``checks`` differ from their
    first row's (hash collisions: the caller then runs again with ``exact``); with
    ``exact`` the key bytes are compared and the return value is 0.
    """
    mask = np.uint64(len(table_h) - 1)
    for i in range(len(first)):
        if not valid[i]:
            first[i] = i
            continue
        h = hashes[i]
        slot = h & mask
        while True:
            th = table_h[slot]
            if th == 0:
                table_h[slot] = h
                table_r[slot] = i
                first[i] = i
                break
            if th == h and (not exact or _same_bytes(offsets, data, i, table_r[slot])):
                first[i] = table_r[slot]
                break
            slot = (slot + np.uint64(1)) & mask
    conflicts = 0
    if not exact:
        for i in range(len(first)):
            if checks[first[i]] != checks[i]:
                conflicts += 1
    return conflicts


@_kernel(inline="always")
def _find(parent, x):
    while parent[x] != x:
        up = parent[parent[x]]
        parent[x] = up
        x = up
    return x


@_kernel(inline="always")
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@_kernel()
def _union_groups(parent, nodes, first, cap):
    """Join every row's node to its first row's; groups of more than ``cap`` rows not (cap > 0)."""
    n = len(first)
    if cap > 0:
        size = np.zeros(n, np.int64)
        for i in range(n):
            size[first[i]] += 1
        for i in range(n):
            j = first[i]
            if j != i and size[j] <= cap:
                _union(parent, nodes[i], nodes[j])
    else:
        for i in range(n):
            j = first[i]
            if j != i:
                _union(parent, nodes[i], nodes[j])


@_kernel()
def _union_pairs(parent, a, b):
    for i in range(len(a)):
        _union(parent, a[i], b[i])


@_kernel()
def _flatten(parent):
    """Point every node at its root in one upward sweep (every parent is smaller)."""
    for i in range(len(parent)):
        parent[i] = parent[parent[i]]


def index_type(n: int) -> type[np.signedinteger]:
    """The integer type that holds indices ``0..n-1``."""
    return np.int32 if n < 2**31 else np.int64


def is_text(kind: pa.DataType) -> bool:
    """Whether an Arrow type is one of the string types the kernels read."""
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view: kernels get their inputs in one type (numba compiles one per
    array type, and writable and read-only arrays are different types)."""
    view = a.view()
    view.flags.writeable = False
    return view


def _string_parts(keys: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets, bytes and validity (False where NULL) of one string array, as views."""
    if not is_text(keys.type):
        msg = f"keys must be strings, got {keys.type}"
        raise ValueError(msg)
    width = np.int32
    if not pa.types.is_string(keys.type):  # views and large strings: 64-bit offsets
        keys = keys.cast(pa.large_string())
        width = np.int64
    bitmap, offsets, data = keys.buffers()
    offs = np.frombuffer(
        offsets, dtype=width, count=len(keys) + 1, offset=keys.offset * width().itemsize
    )
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    if keys.null_count:  # the bitmap unpacked (pyarrow's to_numpy imports pandas)
        bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
        valid = bits[keys.offset : keys.offset + len(keys)].astype(bool)
    else:
        valid = np.ones(len(keys), dtype=bool)
    return offs, raw, valid


class _Tables:
    """Hash tables reused from one key column to the next: first touches of fresh
    memory cost ~1.7 ms per MB on this machine class, and a 3M-key table is ~100 MB."""

    def __init__(self) -> None:
        self.h = np.zeros(0, dtype=np.uint64)
        self.r = np.zeros(0, dtype=np.int32)

    def get(self, size: int, dtype: type[np.signedinteger]) -> tuple[np.ndarray, np.ndarray]:
        """Empty tables of at least ``size`` slots (a power of two)."""
        if len(self.h) < size or self.r.dtype != dtype:
            self.h = np.zeros(size, dtype=np.uint64)
            self.r = np.empty(size, dtype=dtype)
        else:
            self.h.fill(0)
        return self.h, self.r


def group_rows(
    keys: pa.Array | pa.ChunkedArray,
    checks: np.ndarray,
    *,
    hashes: np.ndarray | None = None,
    tables: _Tables | None = None,
) -> tuple[np.ndarray, bool]:
    """The first row holding each row's key, and whether the bytes had to decide.

    Parameters
    ----------
    keys
        A string column; NULL keys link nothing.
    checks
        An independent 64-bit hash of each key (DuckDB's ``hash``).
    hashes
        The rows' hashes (nonzero) instead of the FNV-1a ones: tests pass colliding
        hashes here to exercise the regrouping by bytes.
    tables
        Scratch tables to reuse.

    Returns
    -------
    tuple
        ``first`` (row indices) and ``True`` when hash collisions made the rows be
        grouped again by comparing their bytes.
    """
    n = len(keys)
    if len(checks) != n:
        msg = f"keys ({n}) and checks ({len(checks)}) differ in length"
        raise ValueError(msg)
    chunks = keys.chunks if isinstance(keys, pa.ChunkedArray) else [keys]
    chunks = [c for c in chunks if len(c)] or [pa.nulls(0, pa.string())]
    parts = [_string_parts(c) for c in chunks]
    valid = np.concatenate([v for _, _, v in parts])
    if hashes is None:  # chunk by chunk: the bytes are only joined if they must be compared
        hashes = np.empty(n, dtype=np.uint64)
        pos = 0
        for offs, data, v in parts:
            _key_hashes(_ro(offs), _ro(data), hashes[pos : pos + len(v)])
            pos += len(v)
    else:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64) | _NONZERO
    checks = np.ascontiguousarray(checks, dtype=np.uint64)
    kind = index_type(n)
    first = np.empty(n, dtype=kind)
    size = 1 << int(2 * n).bit_length()
    tables = tables or _Tables()
    table_h, table_r = tables.get(size, kind)
    offs, data, _ = parts[0]
    hashes, valid, checks = _ro(hashes), _ro(valid), _ro(checks)
    conflicts = _first_of_keys(
        hashes, valid, _ro(offs), _ro(data), checks, table_h, table_r, first, False
    )
    if not conflicts:
        return first, False
    log.info("%d keys share a 64-bit hash with another key: grouping by bytes", conflicts)
    try:
        whole = pa.concat_arrays(chunks)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # over 2 GiB of text, or mixed types
        whole = pa.concat_arrays([c.cast(pa.large_string()) for c in chunks])
    offs, data, _ = _string_parts(whole)
    table_h, table_r = tables.get(size, kind)
    _first_of_keys(hashes, valid, _ro(offs), _ro(data), checks, table_h, table_r, first, True)
    return first, True


class UnionFind:
    """Components of nodes ``0..n-1`` built up from key columns and edges.

    Parameters
    ----------
    n
        Number of nodes.
    """

    def __init__(self, n: int) -> None:
        self.kind = index_type(n)
        self.parent = np.arange(n, dtype=self.kind)
        #: Key columns regrouped by their bytes after a hash collision (diagnostics).
        self.exact_regroups = 0
        self._flat = True
        self._tables = _Tables()

    def link_keys(
        self,
        nodes: np.ndarray,
        keys: pa.Array | pa.ChunkedArray,
        checks: np.ndarray,
        *,
        cap: int | None = None,
    ) -> None:
        """Join the nodes whose keys are equal (byte for byte).

        Parameters
        ----------
        nodes
            Node of each row.
        keys
            Key of each row: a string column (NULL links nothing).
        checks
            An independent 64-bit hash of each row's key (DuckDB's ``hash``), which
            tells apart two keys with the same FNV-1a hash.
        cap
            Keys held by more than ``cap`` rows link nothing.
        """
        if len(nodes) != len(keys):
            msg = f"keys ({len(keys)}) and nodes ({len(nodes)}) differ in length"
            raise ValueError(msg)
        if len(nodes) == 0:
            return
        self._check_nodes(nodes)
        first, regrouped = group_rows(keys, checks, tables=self._tables)
        self.exact_regroups += regrouped
        self._flat = False
        _union_groups(self.parent, _ro(nodes.astype(self.kind, copy=False)), _ro(first), cap or 0)

    def _check_nodes(self, nodes: np.ndarray) -> None:
        """Refuse nodes outside ``0..n-1`` (the kernels do not check their indices)."""
        low, high = int(nodes.min()), int(nodes.max())
        if low < 0 or high >= len(self.parent):
            msg = f"nodes must lie in 0..{len(self.parent) - 1}, got {low}..{high}"
            raise ValueError(msg)

    def link_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join the two nodes of every pair ``(a[i], b[i])``."""
        if len(a) != len(b):
            msg = f"edge ends differ in length ({len(a)} and {len(b)})"
            raise ValueError(msg)
        if len(a) == 0:
            return
        self._check_nodes(a)
        self._check_nodes(b)
        self._flat = False
        _union_pairs(
            self.parent,
            _ro(a.astype(self.kind, copy=False)),
            _ro(b.astype(self.kind, copy=False)),
        )

    def roots(self, nodes: np.ndarray) -> np.ndarray:
        """The smallest node of each node's component.

        The first call after links were added points every node at its root (one
        sweep), so each call is then a plain gather.
        """
        if not self._flat:
            _flatten(self.parent)
            self._flat = True
        return self.parent[nodes]


def _warm_up() -> None:
    """Load (or compile) the kernels for the types a closure uses: numba sets itself up
    on the first call (~0.6 s per process), which thus happens on import, not in a match.
    """
    forest = UnionFind(4)
    # Built from buffers: pyarrow converting a Python list imports pandas (~0.8 s).
    offsets = pa.py_buffer(np.array([0, 1, 1, 2], dtype=np.int32))
    some_null = pa.Array.from_buffers(
        pa.string(), 3, [pa.py_buffer(np.array([0b101], np.uint8)), offsets, pa.py_buffer(b"aa")]
    )
    checks = np.ones(3, dtype=np.uint64)
    forest.link_keys(np.arange(3), some_null, checks, cap=2)
    no_null = pa.Array.from_buffers(
        pa.string(), 3, [None, pa.py_buffer(np.array([0, 1, 2, 3], np.int32)), pa.py_buffer(b"aba")]
    )
    forest.link_keys(np.arange(3), no_null, checks)
    forest.link_pairs(np.arange(2), np.arange(1, 3))
    forest.roots(np.arange(4))


_warm_up()
