"""Probabilistic matching of anonymous identifiers (cookies, mobile ad ids): the DMP lens.

Modelled on the public cross-device challenges (ICDM 2015 Drawbridge, CIKM Cup 2016):
candidates come from shared *private* IP addresses, evidence from IP co-occurrence, time,
hour-of-day profiles, visited domains and device compatibility, and the clusters are
the connected components of the confident pairs and each identifier's strongest
links, with a cluster size cap. Only identifier
records (``source`` in ``sources``) are linked; every other record stays a singleton.

Pipeline (all in DuckDB SQL; the only Python work is scoring the few hundred distinct
feature *patterns*, never records or pairs). Steps 1-3 run as named SQL stages
(:mod:`matchers.anonymous_pairs`); the estimators are in :mod:`matchers.fellegi_sunter`:

1. **Candidates.** Identifier x IP rows from ``identifier_ip`` joined to ``ip_stats``.
   Cellular (CGNAT) IPs are ignored unless ``include_cellular``. An IP's privateness is
   its *local degree*: the distinct identifiers seen on it within ``max_gap_days`` of
   the identifier (home addresses are renumbered and handed to another household, so a
   yearly count says little about the month that matters). Two identifiers are
   candidates when they were seen on one IP within ``max_gap_days`` of each other and
   both rows have a local degree of at most ``k1``; identifiers left without a
   candidate get candidates through rows of at most ``k2`` (default ``k2 = k1``: no
   relaxed stage). Each identifier keeps its ``max_candidates`` strongest partners
   (evidence strength below, then closest in time); a pair survives if either side
   keeps it.
2. **Features** per candidate pair, discretised into levels:

   - ``ips``: shared private IPs seen close in time (1, 2, 3+) x whether one of them
     passed the strict ``k1`` cut;
   - ``cooc``: IP co-occurrence ratio, events on the shared IPs over the smaller
     identifier's events (``sum(least(ev_l, ev_r)) / least(total_l, total_r)``);
   - ``device_time``: device compatibility x time relation of the identifiers' first/last
     seen spans. Same (device_type, os, browser) and *sequential* (the second starts
     within ``chain_gap_days`` of the first's end) is the signature of a churned cookie
     (deleted or ITP-capped cookies of one browser follow each other); same browser and
     *overlapping* is unlikely for one person (one browser holds one cookie at a time);
     same platform (device_type, os) covers a phone's cookie vs its ad id;
   - ``hour``: cosine of the hour-of-day event vectors;
   - ``domain``: IDF-weighted Jaccard of the visited domains (rare shared domains -
     per-person favourites - weigh most).

   A missing evidence table gives a constant level. Besides the levels each pair
   carries a continuous *evidence strength* (the sum over its shared IPs of
   ``1 / ln(1 + local degree)``, plus the cosine of the domain TF-IDF vectors) and a
   *same device* flag (a cookie and an ad id of one device type and os).
3. **Scoring: Fellegi-Sunter over feature patterns.** The candidate pairs are grouped
   by feature pattern and each pattern gets the posterior match probability of the
   documented priors (:data:`PRIOR_M`, :data:`PRIOR_U`). EM (conditional independence,
   Laplace-smoothed; :func:`fellegi_sunter_em`) is available with ``em_iterations > 0``
   but off by default: on dmp-crossdevice small (seed 1) it lowered the Drawbridge
   device F0.5 from 0.18 to 0.08 with top-1 links (EM's latent class drifts to the
   household - pairs that share a home IP and domains - rather than the person, since
   the features are far from conditionally independent). Below ``em_min_pairs``
   candidates EM is skipped in any case.
4. **Clustering.** The edges are the pairs whose posterior is at least ``threshold``
   (0.9) plus each identifier's ``max_links`` (1) strongest partners by evidence
   strength, a same-device cookie - ad id pair ranked ``device_bonus`` higher (a cookie
   is attached to the persistent ad id of its own device first); see
   :func:`strongest_edges_sql`. Ranking per identifier, not one global threshold,
   keeps every identifier's best link without chaining households through weak ones.
   Connected components (:func:`~bench.api.capped_components`) over those edges; a
   component larger than ``max_cluster_size`` (1000) is re-clustered on its stronger
   edges (the score threshold inside it raised to the median edge score, step by
   step) until every part fits, and what never fits stays single. The CIKM Cup
   winners capped clusters at 5; the cap here is large because a person's identifiers
   are dominated by churned cookies (``idbench describe`` on dmp-crossdevice small:
   median 15, p90 ~157, p99 ~730 identifiers per person), so it is a guard against
   runaway components, not a model of a person.

Measured on dmp-crossdevice small, seeds 1-2 (tuning) and 1-5 (report): see
``tests/matchers/test_quality_gates.py`` for the floors kept in CI.

:class:`AnonymousSupervised` (``anonymous-supervised``) replaces step 3 when the
harness passes a labelled training sample of persons: m, u and the match share come from
the labelled candidate pairs (:func:`fellegi_sunter_supervised`), with the match share
corrected for how the persons were drawn; candidates, features and clustering are the
same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    capped_components,
    execute,
    literal,
    query,
    query_one,
    quote_ident,
)
from matchers.anonymous_pairs import FEATURES, PairOptions, score_pairs
from matchers.fellegi_sunter import (
    PRIOR_M,
    PRIOR_U,
    fellegi_sunter_em,
    fellegi_sunter_supervised,
)
from matchers.sql_steps import drop_tables

__all__ = [
    "FEATURES",
    "PRIOR_M",
    "PRIOR_U",
    "Anonymous",
    "AnonymousSupervised",
    "capped_components",
    "fellegi_sunter_em",
    "fellegi_sunter_supervised",
]

log = logging.getLogger(__name__)

q = quote_ident


# ----------------------------------------------------------------------------- edges
def strongest_edges_sql(
    pairs: str, *, threshold: float, links: int | None, device_bonus: float = 0.0
) -> str:
    """``(a, b, score)``: the edges of the clustering among the scored ``pairs``.

    A pair is an edge when its posterior is at least ``threshold``, or when either
    side ranks it among its ``links`` best partners by evidence strength (``strength``:
    local-degree-weighted shared IPs plus the domain TF-IDF cosine) plus
    ``device_bonus`` for a cookie and an ad id on the same platform (the cookie of the
    ad id's own device; ties: the smaller partner id). ``links=None`` keeps the
    threshold alone. Ranking per identifier, instead of one global threshold, keeps
    every identifier's best link without letting weak links chain whole households.
    """
    above = f"SELECT record_id_l AS a, record_id_r AS b, score FROM {q(pairs)} WHERE score >= {float(threshold)!r}"
    if links is None:
        return above
    return f"""WITH p AS (SELECT record_id_l AS a, record_id_r AS b, score,
                             strength + {float(device_bonus)!r} * CAST(same_device AS INTEGER) AS rank_by
                      FROM {q(pairs)}),
                    both_sides AS (SELECT a AS x, b AS y, rank_by FROM p
                                   UNION ALL SELECT b, a, rank_by FROM p),
                    ranked AS (SELECT x, y, row_number() OVER (
                                   PARTITION BY x ORDER BY rank_by DESC, y) AS rk
                               FROM both_sides),
                    kept AS (SELECT DISTINCT least(x, y) AS a, greatest(x, y) AS b
                             FROM ranked WHERE rk <= {int(links)})
               SELECT p.a, p.b, p.score FROM p LEFT JOIN kept k USING (a, b)
               WHERE k.a IS NOT NULL OR p.score >= {float(threshold)!r}"""


# ----------------------------------------------------------------------------- matcher
class Anonymous(BaseMatcher):
    """Unsupervised probabilistic cross-device matcher (see module docstring).

    Parameters
    ----------
    threshold
        Posterior match probability at or above which a pair is always an edge.
    sources
        Record sources that are anonymous identifiers; ``None``: ``cookie``, ``maid``.
    k1
        Strict privateness cut: IP rows whose local degree (distinct identifiers on the
        IP within ``max_gap_days``, for both identifiers of a pair) is at most this.
    k2
        Relaxed cut, used only for identifiers without a candidate after ``k1``.
    include_cellular
        Also use cellular (CGNAT) IPs as candidate sources.
    max_gap_days
        Two identifiers share an IP only if their first/last seen on it are at most
        this many days apart (IP leases move between households).
    chain_gap_days
        Identifier spans this close (and not overlapping) count as *sequential*.
    max_candidates
        Partners kept per identifier (most shared IPs first, then closest in time).
    em_iterations
        Maximum EM iterations (0: score with the priors; see the module docstring for
        why that is the default).
    em_min_pairs
        Below this many candidate pairs EM is skipped and the priors score the pairs.
    max_cluster_size
        Cluster size cap (``None``: no cap).
    max_links
        Each identifier also links to its this many strongest partners, whatever their
        posterior (``None``: the threshold alone decides).
    device_bonus
        Added to the evidence strength of a cookie - ad id pair on the same platform when
        ranking partners (attaches a cookie to the ad id of its own device).
    """

    name: ClassVar[str] = "anonymous"
    version: ClassVar[str] = "2"
    lens: ClassVar[str] = "probabilistic"
    tags: ClassVar[frozenset[str]] = frozenset({"events", "emits_pairs"})

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        sources: Sequence[str] | None = None,
        k1: int = 500,
        k2: int = 500,
        include_cellular: bool = False,
        max_gap_days: float = 30.0,
        chain_gap_days: float = 14.0,
        max_candidates: int = 500,
        em_iterations: int = 0,
        em_min_pairs: int = 200,
        max_cluster_size: int | None = 1000,
        max_links: int | None = 1,
        device_bonus: float = 0.3,
    ) -> None:
        self.threshold = threshold
        self.sources = sources
        self.k1 = k1
        self.k2 = k2
        self.include_cellular = include_cellular
        self.max_gap_days = max_gap_days
        self.chain_gap_days = chain_gap_days
        self.max_candidates = max_candidates
        self.em_iterations = em_iterations
        self.em_min_pairs = em_min_pairs
        self.max_cluster_size = max_cluster_size
        self.max_links = max_links
        self.device_bonus = device_bonus

    # ------------------------------------------------------------------ helpers
    def _sources(self) -> list[str]:
        src = ("cookie", "maid") if self.sources is None else self.sources
        return [src] if isinstance(src, str) else [str(s) for s in src]

    def _check_params(self) -> None:
        if not (isinstance(self.k1, int) and isinstance(self.k2, int) and 2 <= self.k1 <= self.k2):
            msg = f"{self.name}: need integers 2 <= k1 <= k2, got k1={self.k1!r}, k2={self.k2!r}"
            raise ValueError(msg)
        if not isinstance(self.max_candidates, int) or self.max_candidates < 1:
            msg = f"{self.name}: max_candidates must be a positive integer, got {self.max_candidates!r}"
            raise ValueError(msg)
        if self.max_cluster_size is not None and (
            not isinstance(self.max_cluster_size, int) or self.max_cluster_size < 2
        ):
            msg = f"{self.name}: max_cluster_size must be an integer >= 2 or None, got {self.max_cluster_size!r}"
            raise ValueError(msg)
        if self.max_links is not None and (
            not isinstance(self.max_links, int) or self.max_links < 1
        ):
            msg = (
                f"{self.name}: max_links must be a positive integer or None, got {self.max_links!r}"
            )
            raise ValueError(msg)

    def _pair_options(self) -> PairOptions:
        return PairOptions(
            matcher=self.name,
            sources=self._sources(),
            k1=self.k1,
            k2=self.k2,
            include_cellular=self.include_cellular,
            max_gap_days=self.max_gap_days,
            chain_gap_days=self.chain_gap_days,
            max_candidates=self.max_candidates,
        )

    # ------------------------------------------------------------------ scoring
    def score_pairs(
        self, ctx: MatchContext, *, ids_sql: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Build candidate pairs and score them; return the table name and diagnostics.

        Runs the stages of :func:`matchers.anonymous_pairs.score_pairs` (which documents
        ``ids_sql`` and the returned table), scoring the feature patterns with
        :meth:`pattern_model`. ``ctx`` needs the ``identifier_ip`` and ``ip_stats``
        tables.
        """
        self._check_params()
        ctx.require_tables("identifier_ip", "ip_stats")
        return score_pairs(ctx, self._pair_options(), model=self.pattern_model, ids_sql=ids_sql)

    def pattern_model(
        self,
        ctx: MatchContext,
        feats: str,
        patterns: dict[str, np.ndarray],
        counts: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Posterior match probability per feature pattern, and diagnostics.

        Unsupervised: EM over the pattern counts, or the priors below ``em_min_pairs``
        candidate pairs or with ``em_iterations = 0``. ``feats`` is the table of
        candidate pairs with their feature levels (read by subclasses that learn from
        labels).
        """
        fit = int(counts.sum()) >= int(self.em_min_pairs) and int(self.em_iterations) > 0
        post, params = fellegi_sunter_em(
            patterns, counts, levels=FEATURES, iterations=int(self.em_iterations), fit=fit
        )
        return post, {"em": params}

    # ------------------------------------------------------------------ match
    def match(self, ctx: MatchContext) -> MatchResult:
        """Score candidate pairs of identifiers and cluster them."""
        t0 = time.perf_counter()
        con = ctx.con
        pairs, diag = self.score_pairs(ctx)
        edges = ctx.temp_name("anon_edges")
        execute(
            con,
            f"CREATE OR REPLACE TEMP VIEW {q(edges)} AS "
            + strongest_edges_sql(
                pairs,
                threshold=float(self.threshold),
                links=self.max_links,
                device_bonus=float(self.device_bonus),
            ),
        )
        cc = capped_components(
            con,
            edges,
            ctx.temp_name,
            threshold=0.0,  # the edges are chosen above; posteriors are >= 0
            max_size=self.max_cluster_size,
        )
        diag["clustering"] = cc.diagnostics()
        clusters = ctx.temp_name("anon_clusters")
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(clusters)} AS
                SELECT r.record_id, coalesce(l.label, r.record_id) AS cluster_id
                FROM {q(ctx.records)} r LEFT JOIN {q(cc.table)} l ON l.node = r.record_id""",
            step=f"{self.name}: clusters",
        )
        execute(con, f"DROP VIEW IF EXISTS {q(edges)}")
        drop_tables(con, cc.table)
        diag["seconds"] = round(time.perf_counter() - t0, 3)
        rel_pairs = con.sql(f"SELECT record_id_l, record_id_r, score FROM {q(pairs)}")
        return MatchResult(clusters=clusters, pairs=rel_pairs, diagnostics=diag)


# ----------------------------------------------------------------------------- supervised
class AnonymousSupervised(Anonymous):
    """:class:`Anonymous` with m, u and lambda learnt from a labelled training sample.

    The harness passes the labels of a seeded sample of persons (``ctx.labels``; see
    :mod:`bench.data.labels`) and evaluates on the other persons only. Candidates, features
    and clustering are those of ``anonymous``; only the scoring model differs: the
    candidate pairs whose two identifiers are both labelled give the m and u
    probabilities of each feature level directly (same person vs different persons),
    and the match share is corrected for how the sample was drawn
    (:func:`fellegi_sunter_supervised`). The sample fraction is estimated as the share
    of identifier records that carry a label.

    With fewer than ``min_labelled_pairs`` labelled candidate pairs of either class
    (no labels, a tiny dataset), it scores like ``anonymous`` and says so in its
    diagnostics (``model.supervised = false`` with the reason).

    Parameters
    ----------
    min_labelled_pairs
        Labelled true pairs and labelled false pairs needed (each) to use the labels.
    Other parameters
        As :class:`Anonymous`.
    """

    name: ClassVar[str] = "anonymous-supervised"
    version: ClassVar[str] = "2"
    tags: ClassVar[frozenset[str]] = frozenset({"events", "emits_pairs", "needs_labels"})

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        sources: Sequence[str] | None = None,
        k1: int = 500,
        k2: int = 500,
        include_cellular: bool = False,
        max_gap_days: float = 30.0,
        chain_gap_days: float = 14.0,
        max_candidates: int = 500,
        em_iterations: int = 0,
        em_min_pairs: int = 200,
        max_cluster_size: int | None = 1000,
        max_links: int | None = 1,
        device_bonus: float = 0.3,
        min_labelled_pairs: int = 20,
    ) -> None:
        super().__init__(
            threshold=threshold,
            sources=sources,
            k1=k1,
            k2=k2,
            include_cellular=include_cellular,
            max_gap_days=max_gap_days,
            chain_gap_days=chain_gap_days,
            max_candidates=max_candidates,
            em_iterations=em_iterations,
            em_min_pairs=em_min_pairs,
            max_cluster_size=max_cluster_size,
            max_links=max_links,
            device_bonus=device_bonus,
        )
        self.min_labelled_pairs = min_labelled_pairs

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.min_labelled_pairs, int) or self.min_labelled_pairs < 1:
            msg = (
                f"{self.name}: min_labelled_pairs must be a positive integer, "
                f"got {self.min_labelled_pairs!r}"
            )
            raise ValueError(msg)

    def pattern_model(
        self,
        ctx: MatchContext,
        feats: str,
        patterns: dict[str, np.ndarray],
        counts: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Posterior per pattern from the labelled pairs (falls back without enough)."""
        if ctx.labels is None:
            post, model = super().pattern_model(ctx, feats, patterns, counts)
            return post, {**model, "supervised": False, "reason": "no labels were given"}
        matches, non_matches = self._labelled_pairs(ctx, feats, patterns)
        labelled, n_ids = self._labelled_identifiers(ctx)
        info: dict[str, Any] = {
            "labelled_true_pairs": int(matches.sum()),
            "labelled_false_pairs": int(non_matches.sum()),
            "labelled_identifiers": labelled,
        }
        need = int(self.min_labelled_pairs)
        if min(matches.sum(), non_matches.sum()) < need or labelled == 0:
            post, model = super().pattern_model(ctx, feats, patterns, counts)
            reason = f"fewer than {need} labelled true or false candidate pairs"
            log.info("%s: %s; scoring without labels", self.name, reason)
            return post, {**model, "supervised": False, "reason": reason, **info}
        fraction = labelled / n_ids
        learnt = fellegi_sunter_supervised(
            patterns, matches, non_matches, levels=FEATURES, sample_fraction=fraction
        )
        post, params = fellegi_sunter_em(
            patterns,
            counts,
            levels=FEATURES,
            prior_m={f: list(v) for f, v in learnt["m"].items()},
            prior_u={f: list(v) for f, v in learnt["u"].items()},
            prior_lambda=learnt["lambda"],
            fit=False,
        )
        return post, {
            "supervised": True,
            "sample_fraction": round(fraction, 6),
            "model": params,
            **info,
        }

    def _labelled_pairs(
        self, ctx: MatchContext, feats: str, patterns: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labelled true and false candidate pairs per pattern, aligned with ``patterns``."""
        cols = ", ".join(FEATURES)
        # the same patterns in the same order as `patterns`, with their labelled pairs
        rows = query(
            ctx.con,
            f"""SELECT {cols},
                       count(*) FILTER (WHERE a.entity_id = b.entity_id) AS m,
                       count(*) FILTER (WHERE a.entity_id <> b.entity_id) AS u
                FROM {q(feats)} f
                LEFT JOIN {q(ctx.labels)} a ON a.record_id = f.record_id_l
                LEFT JOIN {q(ctx.labels)} b ON b.record_id = f.record_id_r
                GROUP BY ALL ORDER BY {cols}""",
            step=f"{self.name}: labelled pairs per pattern",
        )
        for f in FEATURES:
            same = np.asarray(rows.column(f).to_pylist(), dtype=np.int64)
            if not np.array_equal(same, patterns[f]):  # pragma: no cover - same query shape
                msg = f"{self.name}: labelled patterns are not aligned with the candidates"
                raise RuntimeError(msg)
        matches = np.asarray(rows.column("m").to_pylist(), dtype=float)
        non_matches = np.asarray(rows.column("u").to_pylist(), dtype=float)
        return matches, non_matches

    def _labelled_identifiers(self, ctx: MatchContext) -> tuple[int, int]:
        """Identifier records that carry a label, and all identifier records."""
        sources = ", ".join(literal(s) for s in self._sources())
        share = query_one(
            ctx.con,
            f"""SELECT count(l.record_id) AS labelled, count(*) AS n
                FROM {q(ctx.records)} r
                LEFT JOIN (SELECT DISTINCT record_id FROM {q(ctx.labels)}) l
                  ON l.record_id = r.record_id
                WHERE r.source IN ({sources})""",
            step=f"{self.name}: labelled share",
        )
        return int(share["labelled"] or 0), int(share["n"] or 0)
