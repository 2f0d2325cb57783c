"""Probabilistic matching with the recordlinkage toolkit (pandas, unsupervised ECM).

Pipeline: pull only the needed columns from DuckDB into pandas, index candidate pairs
(union of blocking passes, or a sorted neighbourhood), compare (Jaro-Winkler on names
and street, exact on the rest), classify with the unsupervised ECM
(Expectation/Conditional Maximisation) Fellegi-Sunter classifier, and cluster the pairs
at or above ``threshold`` by connected components.

recordlinkage materialises every candidate pair in memory (users report running out of
memory at a few hundred thousand records), so the number of candidates is counted in
DuckDB before indexing and checked against ``max_pairs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import recordlinkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    UnsupportedInput,
    query,
    query_one,
    quote_ident,
)
from matchers.blocking import PAIR_BLOCKS

__all__ = ["RecordLinkageMatcher", "count_candidates"]

log = logging.getLogger(__name__)

#: Compared with Jaro-Winkler similarity (typos are expected).
STRING_COLUMNS: tuple[str, ...] = ("given_name", "family_name", "street", "city")
#: Compared for exact equality.
EXACT_COLUMNS: tuple[str, ...] = (
    "dob",
    "email",
    "phone",
    "house_number",
    "postcode",
    "region",
    "customer_no",
    "loyalty_id",
    "account_id",
)


def count_candidates(
    con: Any,
    records: str,
    *,
    blocks: Sequence[Sequence[str]],
    sorted_neighbourhood: str | None = None,
    window: int = 3,
) -> tuple[int, int]:
    """Count candidate pairs in SQL, without building them.

    Returns
    -------
    tuple
        ``(largest pass, sum over passes)``: the union of the passes has at least the
        first and at most the second number of pairs.
    """
    table = quote_ident(records)
    counts: list[int] = []
    for cols in blocks:
        keys = ", ".join(quote_ident(c) for c in cols)
        not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in cols)
        sql = (
            f"SELECT coalesce(sum(n * (n - 1) // 2), 0)::HUGEINT AS pairs FROM "
            f"(SELECT count(*)::HUGEINT AS n FROM {table} WHERE {not_null} GROUP BY {keys})"
        )
        counts.append(int(query(con, sql, step=f"count block {cols}").column(0)[0].as_py()))
    if sorted_neighbourhood is not None:
        # recordlinkage sorts the distinct key values and pairs records whose values are
        # at most window // 2 ranks apart (same value included).
        col = quote_ident(sorted_neighbourhood)
        half = max(int(window) // 2, 0)
        sql = f"""
            WITH v AS (
                SELECT {col} AS k, count(*)::HUGEINT AS n,
                       row_number() OVER (ORDER BY {col}) AS rk
                FROM {table} WHERE {col} IS NOT NULL GROUP BY {col}
            )
            SELECT coalesce((SELECT sum(n * (n - 1) // 2) FROM v), 0)
                 + coalesce((SELECT sum(a.n * b.n) FROM v a JOIN v b
                             ON b.rk > a.rk AND b.rk <= a.rk + {half}), 0) AS pairs
        """
        counts.append(int(query(con, sql, step="count sorted neighbourhood").column(0)[0].as_py()))
    if not blocks and sorted_neighbourhood is None:
        n = int(query(con, f"SELECT count(*) AS n FROM {table}", step="count").column(0)[0].as_py())
        counts.append(n * (n - 1) // 2)
    return max(counts, default=0), sum(counts)


def _budget_error(count: int, budget: int, what: str) -> ValueError:
    msg = (
        f"recordlinkage: {what} {count:,} candidate pairs, over the budget max_pairs="
        f"{budget:,}. recordlinkage holds every candidate pair and its comparison vector "
        "in memory; block on more selective columns (block_on=[...] with two or more "
        "columns per pass), use a smaller sorted-neighbourhood window, or raise max_pairs "
        "if the machine has the memory (about 100 bytes per pair and compared column)."
    )
    return ValueError(msg)


class RecordLinkageMatcher(BaseMatcher):
    """Unsupervised Fellegi-Sunter (ECM) matching with the recordlinkage toolkit.

    Parameters
    ----------
    threshold
        ECM match probability at or above which a pair links two records.
    block_on
        Blocking passes, each a list of columns that must be equal; candidates are the
        union of the passes. ``None``: the passes of
        :data:`matchers.blocking.PAIR_BLOCKS` whose columns exist (name pairs, name +
        dob, postcode + name, street + house number, email, phone).
        An empty list with no ``sorted_neighbourhood`` compares all pairs.
    sorted_neighbourhood
        Column for an additional sorted-neighbourhood pass, or ``None``.
    window
        Window of the sorted-neighbourhood pass (odd; ``window // 2`` neighbours on
        each side of a value).
    string_threshold
        Jaro-Winkler similarity at or above which two name/street/city values agree.
    min_coverage
        Share of candidate pairs on which a compared column must be present on both
        sides; sparser columns (and columns that agree on almost all or almost none of
        the pairs where present) are left out of the ECM, which they would otherwise
        derail (missing values compare as disagreement).
    max_pairs
        Candidate budget. The candidates are counted in DuckDB before indexing and again
        after; above the budget the matcher raises ``ValueError`` instead of exhausting
        memory. The default, 5 million, needs roughly 2-4 GB.
    """

    name: ClassVar[str] = "recordlinkage"
    version: ClassVar[str] = "3"
    lens: ClassVar[str] = "probabilistic"
    tags: ClassVar[frozenset[str]] = frozenset({"pii", "emits_pairs"})

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        block_on: list[list[str]] | None = None,
        sorted_neighbourhood: str | None = None,
        window: int = 3,
        string_threshold: float = 0.85,
        min_coverage: float = 0.05,
        max_pairs: int = 5_000_000,
    ) -> None:
        self.threshold = threshold
        self.block_on = block_on
        self.sorted_neighbourhood = sorted_neighbourhood
        self.window = window
        self.string_threshold = string_threshold
        self.min_coverage = min_coverage
        self.max_pairs = max_pairs

    def _plan(self, columns: Sequence[str]) -> tuple[list[list[str]], list[str], list[str]]:
        have = set(columns)
        strings = [c for c in STRING_COLUMNS if c in have]
        exact = [c for c in EXACT_COLUMNS if c in have]
        if not strings and not exact:
            msg = (
                "recordlinkage: the records have no value in any column it compares "
                f"({', '.join(STRING_COLUMNS + EXACT_COLUMNS)}): nothing to match on"
            )
            raise UnsupportedInput(msg)
        if self.block_on is None:
            blocks = [list(b) for b in PAIR_BLOCKS if set(b) <= have]
        else:
            blocks = [[b] if isinstance(b, str) else list(b) for b in self.block_on]
        if not blocks and self.sorted_neighbourhood is None:
            msg = (
                "recordlinkage: no blocking pass applies (each needs "
                f"{' or '.join('+'.join(b) for b in PAIR_BLOCKS)} filled): no candidate pairs"
            )
            raise UnsupportedInput(msg)
        needed = {c for b in blocks for c in b}
        if self.sorted_neighbourhood is not None:
            needed.add(self.sorted_neighbourhood)
        missing = sorted(needed - have)
        if missing:
            msg = f"recordlinkage: blocking column(s) {', '.join(missing)} not in the records"
            raise ValueError(msg)
        return blocks, strings, exact

    def match(self, ctx: MatchContext) -> MatchResult:
        """Index, compare, classify with ECM and cluster at ``threshold``.

        Raises
        ------
        UnsupportedInput
            The records have no value in any column it compares (anonymous identifiers
            only, e.g. a device graph): the run is skipped with that reason.
        """
        blocks, strings, exact = self._plan(_filled_columns(ctx, STRING_COLUMNS + EXACT_COLUMNS))
        phases: dict[str, float] = {}

        t0 = time.perf_counter()
        largest, upper = count_candidates(
            ctx.con,
            ctx.records,
            blocks=blocks,
            sorted_neighbourhood=self.sorted_neighbourhood,
            window=self.window,
        )
        if largest > self.max_pairs:
            raise _budget_error(largest, self.max_pairs, "one indexing pass alone yields")
        phases["count"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        frame = self._load(ctx, blocks, [*strings, *exact])
        phases["load"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        candidates = self._index(frame, blocks)
        n_candidates = 0 if candidates is None else len(candidates)
        if n_candidates > self.max_pairs:  # the union of passes (upper bound was {upper})
            raise _budget_error(n_candidates, self.max_pairs, "indexing yields")
        phases["index"] = time.perf_counter() - t0

        diagnostics: dict[str, Any] = {
            "blocks": blocks,
            "candidates": n_candidates,
            "candidates_upper_bound": upper,
            "compared": {"jarowinkler": strings, "exact": exact},
        }
        if not n_candidates:
            return _singletons(frame, {**diagnostics, "phases": phases})

        t0 = time.perf_counter()
        compare = recordlinkage.Compare()
        for c in strings:
            compare.string(c, c, method="jarowinkler", threshold=self.string_threshold, label=c)
        for c in exact:
            compare.exact(c, c, label=c)
        features = compare.compute(candidates, frame)
        phases["compare"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        prob, ecm_diag = self._classify(features, frame, diagnostics)
        n_linked = int((prob >= self.threshold).sum())
        if not n_linked:
            log.warning(
                "recordlinkage: no candidate pair reaches threshold %s; the fit may be "
                "degenerate on this data (diagnostics: ecm, features_dropped)",
                self.threshold,
            )
        phases["classify"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        pairs, clusters = _pairs_and_clusters(features, frame, prob, prob >= self.threshold)
        phases["cluster"] = time.perf_counter() - t0

        diagnostics.update(
            {
                "phases": phases,
                "ecm": ecm_diag,
                "pairs_at_threshold": n_linked,
            }
        )
        return MatchResult(clusters=clusters, pairs=pairs, diagnostics=diagnostics)

    def _load(
        self, ctx: MatchContext, blocks: list[list[str]], compared: list[str]
    ) -> pd.DataFrame:
        """The compared and blocking columns of the records, indexed by ``record_id``."""
        wanted = ["record_id", *dict.fromkeys([*compared, *(c for b in blocks for c in b)])]
        if self.sorted_neighbourhood and self.sorted_neighbourhood not in wanted:
            wanted.append(self.sorted_neighbourhood)
        frame = query(
            ctx.con,
            f"SELECT {', '.join(quote_ident(c) for c in wanted)} FROM {quote_ident(ctx.records)}"
            " ORDER BY record_id",
            step="load records",
        ).to_pandas()
        return frame.set_index("record_id")

    def _index(self, frame: pd.DataFrame, blocks: list[list[str]]) -> pd.MultiIndex | None:
        """Candidate pairs: the union of the blocking passes (``None`` below two records)."""
        indexer = recordlinkage.Index()
        for cols in blocks:
            indexer.block(cols)
        if self.sorted_neighbourhood is not None:
            indexer.sortedneighbourhood(self.sorted_neighbourhood, window=self.window)
        if not blocks and self.sorted_neighbourhood is None:
            indexer.full()
        return indexer.index(frame) if len(frame) > 1 else None

    def _classify(
        self, features: pd.DataFrame, frame: pd.DataFrame, diagnostics: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any] | None]:
        """Match probability per candidate pair, and the ECM's parameters (if it ran).

        Records the screened-out features in ``diagnostics["features_dropped"]``.
        """
        binary = (features.fillna(0) >= 0.5).astype(np.int8)
        kept, screened = _screen_features(binary, frame, self.min_coverage)
        diagnostics["features_dropped"] = screened
        if not kept.shape[1]:
            # No column varies among the candidates (e.g. a handful of records that agree
            # on everything): nothing for the ECM to learn; score by the share of
            # compared columns that agree.
            log.info("recordlinkage: no informative column for the ECM; scoring by agreement")
            return binary.to_numpy(dtype=np.float64).mean(axis=1), None
        ecm = recordlinkage.ECMClassifier(binarize=None)
        with np.errstate(divide="ignore", invalid="ignore"):
            ecm.fit(kept)
        m, u, p_match, swapped = _ecm_parameters(ecm, list(kept.columns))
        prob = _posterior(kept.to_numpy(dtype=np.int8), m, u, p_match)
        ecm_diag = {
            "p_match": p_match,
            "classes_swapped": swapped,
            "m": {k: float(v) for k, v in zip(kept.columns, m, strict=True)},
            "u": {k: float(v) for k, v in zip(kept.columns, u, strict=True)},
        }
        return prob, ecm_diag


def _filled_columns(ctx: MatchContext, compared: Sequence[str]) -> list[str]:
    """The records' columns, less the compared ones that hold no value at all.

    A dataset of anonymous identifiers has the personal columns but leaves them empty;
    comparing them would find no candidate pair and report an empty run as a result.
    Fewer than two records are left alone: they are resolved as they are (singletons).
    """
    columns = ctx.columns()
    present = [c for c in compared if c in columns]
    if not present:
        return columns
    counts = query_one(
        ctx.con,
        "SELECT count(*) AS __n, "
        + ", ".join(f"count({quote_ident(c)}) AS {quote_ident(c)}" for c in present)
        + f" FROM {quote_ident(ctx.records)}",
        step="count filled columns",
    )
    if counts["__n"] < 2:
        return columns
    empty = {c for c in present if not counts[c]}
    return [c for c in columns if c not in empty]


def _singletons(frame: pd.DataFrame, diagnostics: dict[str, Any]) -> MatchResult:
    """Every record alone and no pairs (no candidate pair)."""
    ids = frame.index.to_numpy(dtype=np.int64)
    clusters = pa.table({"record_id": ids, "cluster_id": ids})
    empty = pa.table(
        {
            "record_id_l": pa.array([], pa.int64()),
            "record_id_r": pa.array([], pa.int64()),
            "score": pa.array([], pa.float64()),
        }
    )
    return MatchResult(clusters, empty, diagnostics)


def _pairs_and_clusters(
    features: pd.DataFrame, frame: pd.DataFrame, prob: np.ndarray, linked: np.ndarray
) -> tuple[pa.Table, pa.Table]:
    """Scored pairs (smaller id first) and the components over the ``linked`` ones."""
    # For a dedupe index recordlinkage returns the larger id first: normalise.
    first = features.index.get_level_values(0).to_numpy(dtype=np.int64)
    second = features.index.get_level_values(1).to_numpy(dtype=np.int64)
    left, right = np.minimum(first, second), np.maximum(first, second)
    pairs = pa.table({"record_id_l": left, "record_id_r": right, "score": prob})
    clusters = _components(frame.index.to_numpy(dtype=np.int64), left, right, linked)
    return pairs, clusters


#: Probabilities are clipped to [EPS, 1 - EPS] when scoring: an agreement level the EM
#: saw only in one class must not give log(0) (NaN posteriors, every score 0).
EPS = 1e-6


def _screen_features(
    features: pd.DataFrame, frame: pd.DataFrame, min_coverage: float
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Keep the 0/1 comparison columns the ECM can learn from.

    A missing value compares as disagreement (recordlinkage's ``missing_value=0``), so
    a column that is present on both sides of few candidate pairs mostly measures
    *which sources* a pair comes from, not whether it is a match, and a column that
    (nearly) always or never agrees where present carries no evidence but gives the EM
    empty cells (log 0). Both are dropped.

    Returns
    -------
    tuple
        The kept features and ``{dropped column: reason}``.
    """
    binary = features
    first = features.index.get_level_values(0)
    second = features.index.get_level_values(1)
    dropped: dict[str, str] = {}
    for col in binary.columns:
        both = frame[col].reindex(first).notna().to_numpy() & (
            frame[col].reindex(second).notna().to_numpy()
        )
        coverage = float(both.mean())
        if coverage < min_coverage:
            dropped[col] = f"both sides present on {coverage:.3f} of the candidates"
            continue
        agree = float(binary[col].to_numpy()[both].mean())
        if not 0.005 <= agree <= 0.995:
            dropped[col] = f"agrees on {agree:.4f} of the pairs where both are present"
    return binary.drop(columns=list(dropped)), dropped


def _ecm_parameters(ecm: Any, columns: list[str]) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """``(m, u, p_match, swapped)``: P(agree | class) per feature from a fitted ECM.

    The ECM's two latent classes are unlabelled; the match class is the one that agrees
    more often on most features. If the fitted "match" class agrees less often on most
    features, the classes are swapped back. Non-finite estimates become 0.5 (no evidence).
    """

    def agree(probs: dict[str, dict[Any, float]]) -> np.ndarray:
        out = []
        for col in columns:
            levels = {float(k): float(v) for k, v in probs.get(col, {}).items()}
            out.append(levels.get(1.0, 0.0) if len(levels) > 1 or 1.0 in levels else 0.0)
        arr = np.asarray(out, dtype=np.float64)
        return np.where(np.isfinite(arr), arr, 0.5)

    m, u = agree(ecm.m_probs), agree(ecm.u_probs)
    p = float(ecm.p) if np.isfinite(ecm.p) else 0.5
    swapped = bool((m > u).sum() < (m < u).sum())
    if swapped:
        m, u, p = u, m, 1.0 - p
    return m, u, min(max(p, EPS), 1.0 - EPS), swapped


def _posterior(x: np.ndarray, m: np.ndarray, u: np.ndarray, p_match: float) -> np.ndarray:
    """Fellegi-Sunter match probability of 0/1 comparison vectors, in log space."""
    m = np.clip(m, EPS, 1.0 - EPS)
    u = np.clip(u, EPS, 1.0 - EPS)
    w_agree = np.log(m) - np.log(u)
    w_disagree = np.log1p(-m) - np.log1p(-u)
    score = np.log(p_match) - np.log1p(-p_match) + x @ w_agree + (1 - x) @ w_disagree
    return 1.0 / (1.0 + np.exp(-np.clip(score, -700.0, 700.0)))


def _components(ids: np.ndarray, left: np.ndarray, right: np.ndarray, keep: np.ndarray) -> pa.Table:
    """Connected components over the kept pairs; cluster id = smallest member id."""
    order = np.sort(ids)
    li = np.searchsorted(order, left[keep])
    ri = np.searchsorted(order, right[keep])
    n = len(order)
    graph = coo_matrix((np.ones(len(li), dtype=np.int8), (li, ri)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    smallest = np.full(labels.max(initial=-1) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, labels, order)
    return pa.table({"record_id": order, "cluster_id": smallest[labels]})
