"""Probabilistic matching of anonymous identifiers (cookies, mobile ad ids): the DMP lens.

Modelled on the public cross-device challenges (ICDM 2015 Drawbridge, CIKM Cup 2016):
candidates come from shared *private* IP addresses, evidence from IP co-occurrence, time,
hour-of-day profiles, visited domains and device compatibility, and the clusters are
the transitive closure of the confident pairs with a cluster size cap. Only identifier
records (``source`` in ``sources``) are linked; every other record stays a singleton.

Pipeline (all in DuckDB SQL; the only Python work is EM over the few hundred distinct
feature *patterns*, never over records or pairs):

1. **Candidates.** Identifier x IP rows from ``identifier_ip`` joined to ``ip_stats``.
   Cellular (CGNAT) IPs are ignored unless ``include_cellular``. Two identifiers are
   candidates when they share an IP with at most ``k1`` distinct identifiers and were
   seen on it within ``max_gap_days`` of each other (home addresses are renumbered and
   handed to another household, so sharing an IP months apart is no evidence). Relaxed
   stepwise: identifiers left without a candidate get candidates through IPs with at
   most ``k2`` identifiers. Each identifier keeps its ``max_candidates`` best partners
   (most shared IPs, then closest in time); a pair survives if either side keeps it.
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

   A missing evidence table gives a constant level, which EM learns to ignore.
3. **Scoring without labels: Fellegi-Sunter with EM.** The candidate pairs are grouped
   by feature pattern; EM (conditional independence, Laplace-smoothed) estimates the
   match share lambda and m/u probabilities per feature level from the pattern counts.
   The pair score is the posterior match probability of its pattern. With fewer than
   ``em_min_pairs`` candidates (toy inputs) EM is skipped and fixed, documented priors
   (:data:`PRIOR_M`, :data:`PRIOR_U`) score the pairs.
4. **Clustering.** Connected components (:mod:`bench.sql.graph`) over pairs scoring at
   least ``threshold``; a component larger than ``max_cluster_size`` is re-clustered on
   its stronger edges only (the threshold inside it is raised to the median edge score,
   step by step) until every part fits; what never fits stays single
   (:func:`capped_components`). The CIKM Cup winners capped clusters at 5; here the cap
   defaults to 300 because a person's identifiers are dominated by churned cookies
   (``idbench describe`` on dmp-crossdevice small: median 15, p90 ~157, p99 ~730
   identifiers per person), so a cap of 5 would cut most true links.

The cap is a guard, so a pair at or above ``threshold`` may end up split when its
component was too large.

:class:`AnonymousSupervised` (``anonymous-supervised``) replaces step 3 when the
harness passes a labelled training sample of persons: m, u and the match share come from
the labelled candidate pairs (:func:`fellegi_sunter_supervised`), with the match share
corrected for how the persons were drawn; candidates, features and clustering are the
same.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    UnsupportedInput,
    capped_components,
    execute,
    literal,
    query,
    query_one,
    quote_ident,
)

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

#: Feature name -> number of levels (0 = weakest evidence).
FEATURES: dict[str, int] = {"ips": 6, "cooc": 3, "device_time": 10, "hour": 4, "domain": 4}

# device_time levels: device relation x time relation of the spans.
#   0 same browser, overlapping   1 same browser, far apart   2 same browser, sequential
#   3 same platform, overlapping  4 same platform, far        5 same platform, sequential
#   6 different device, overlap   7 different, far            8 different, sequential
#   9 device unknown (columns absent)

#: Prior m probabilities per level (used when EM is skipped, and as EM's start).
PRIOR_M: dict[str, list[float]] = {
    "ips": [0.3, 0.3, 0.1, 0.1, 0.1, 0.1],
    "cooc": [0.05, 0.2, 0.75],
    "device_time": [0.01, 0.15, 0.3, 0.02, 0.04, 0.08, 0.1, 0.1, 0.2, 0.0],
    "hour": [0.4, 0.3, 0.1, 0.2],
    "domain": [0.4, 0.05, 0.15, 0.4],
}
#: Prior u probabilities per level.
PRIOR_U: dict[str, list[float]] = {
    "ips": [0.6, 0.3, 0.05, 0.03, 0.01, 0.01],
    "cooc": [0.25, 0.35, 0.4],
    "device_time": [0.05, 0.02, 0.02, 0.05, 0.03, 0.03, 0.4, 0.2, 0.2, 0.0],
    "hour": [0.7, 0.2, 0.05, 0.05],
    "domain": [0.7, 0.12, 0.13, 0.05],
}
PRIOR_LAMBDA = 0.1


# ----------------------------------------------------------------------------- EM
def fellegi_sunter_em(
    patterns: dict[str, np.ndarray],
    counts: np.ndarray,
    *,
    levels: dict[str, int],
    iterations: int = 50,
    tol: float = 1e-6,
    prior_m: dict[str, list[float]] | None = None,
    prior_u: dict[str, list[float]] | None = None,
    prior_lambda: float = PRIOR_LAMBDA,
    fit: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fellegi-Sunter EM over pattern counts; posterior match probability per pattern.

    Parameters
    ----------
    patterns
        Feature name -> integer level per distinct pattern (all arrays of one length).
    counts
        Number of candidate pairs per pattern.
    levels
        Feature name -> number of levels.
    iterations, tol
        EM stops after ``iterations`` or when lambda moves less than ``tol``.
    prior_m, prior_u, prior_lambda
        Start values (and the model itself when ``fit`` is false).
    fit
        Run EM; otherwise score with the priors.

    Returns
    -------
    posterior, params
        Posterior match probability per pattern; the fitted lambda, m and u (JSON-able).
    """
    prior_m = prior_m or PRIOR_M
    prior_u = prior_u or PRIOR_U
    eps = 1e-4

    def norm(v: list[float] | np.ndarray, n: int) -> np.ndarray:
        a = np.asarray(v, dtype=float)[:n] + eps
        return a / a.sum()

    m = {f: norm(prior_m[f], n) for f, n in levels.items()}
    u = {f: norm(prior_u[f], n) for f, n in levels.items()}
    lam = float(prior_lambda)
    n = counts.astype(float)
    its = 0

    def posterior() -> np.ndarray:
        lm = np.full(n.shape, math.log(lam))
        lu = np.full(n.shape, math.log(1.0 - lam))
        for f in levels:
            lm = lm + np.log(m[f][patterns[f]])
            lu = lu + np.log(u[f][patterns[f]])
        return 1.0 / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))

    if fit and n.sum() > 0:
        for its in range(1, iterations + 1):  # noqa: B007 - its reported below
            w = posterior()
            nw, nu = n * w, n * (1.0 - w)
            new_lam = float(np.clip(nw.sum() / n.sum(), 1e-6, 1 - 1e-6))
            for f, k in levels.items():
                # Laplace smoothing (one pseudo-pair per level) keeps empty levels finite.
                m[f] = (np.bincount(patterns[f], weights=nw, minlength=k) + 1.0) / (nw.sum() + k)
                u[f] = (np.bincount(patterns[f], weights=nu, minlength=k) + 1.0) / (nu.sum() + k)
            done = abs(new_lam - lam) < tol
            lam = new_lam
            if done:
                break
    params = {
        "lambda": round(lam, 6),
        "iterations": its,
        "fitted": bool(fit and n.sum() > 0),
        "m": {f: [round(float(x), 5) for x in v] for f, v in m.items()},
        "u": {f: [round(float(x), 5) for x in v] for f, v in u.items()},
    }
    return posterior(), params


# ----------------------------------------------------------------------------- matcher
class Anonymous(BaseMatcher):
    """Unsupervised probabilistic cross-device matcher (see module docstring).

    Parameters
    ----------
    threshold
        Posterior match probability at or above which a pair is linked.
    sources
        Record sources that are anonymous identifiers; ``None``: ``cookie``, ``maid``.
    k1
        Strict privateness cut: IPs with at most this many distinct identifiers.
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
        Maximum EM iterations.
    em_min_pairs
        Below this many candidate pairs EM is skipped and the priors score the pairs.
    max_cluster_size
        Cluster size cap (``None``: no cap).
    """

    name: ClassVar[str] = "anonymous"
    version: ClassVar[str] = "1"
    lens: ClassVar[str] = "probabilistic"
    tags: ClassVar[frozenset[str]] = frozenset({"events", "emits_pairs"})

    def __init__(
        self,
        *,
        threshold: float = 0.3,
        sources: Sequence[str] | None = None,
        k1: int = 100,
        k2: int = 500,
        include_cellular: bool = False,
        max_gap_days: float = 30.0,
        chain_gap_days: float = 14.0,
        max_candidates: int = 50,
        em_iterations: int = 0,
        em_min_pairs: int = 200,
        max_cluster_size: int | None = 1000,
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

    # ------------------------------------------------------------------ scoring
    def score_pairs(
        self, ctx: MatchContext, *, ids_sql: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Build candidate pairs and score them; return the table name and diagnostics.

        Parameters
        ----------
        ctx
            Match context (needs ``identifier_ip`` and ``ip_stats``).
        ids_sql
            Optional query returning the ``record_id`` of the identifiers to consider;
            default: records whose ``source`` is in ``sources``.

        Returns
        -------
        table, diagnostics
            ``table`` has ``record_id_l < record_id_r``, ``score`` (posterior match
            probability) and the feature levels.
        """
        self._check_params()
        ctx.require_tables("identifier_ip", "ip_stats")
        con = ctx.con
        t0 = time.perf_counter()
        tn = ctx.temp_name
        have = set(ctx.columns())
        recs = q(ctx.records)
        diag: dict[str, Any] = {}
        if ids_sql is None:
            if "source" not in have:
                msg = f"{self.name}: records lack column source"
                raise UnsupportedInput(msg)
            srcs = ", ".join(literal(s) for s in self._sources())
            ids_sql = f"SELECT record_id FROM {recs} WHERE source IN ({srcs})"
        dev_cols = [c for c in ("device_type", "os", "browser") if c in have]
        dev_sel = ", ".join(
            f"r.{q(c)}" if c in dev_cols else f"CAST(NULL AS VARCHAR) AS {q(c)}"
            for c in ("device_type", "os", "browser")
        )
        ids = tn("anon_ids")
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(ids)} AS
                SELECT r.record_id, {dev_sel} FROM {recs} r
                WHERE r.record_id IN ({ids_sql})""",
            step=f"{self.name}: identifiers",
        )
        cell = "" if self.include_cellular else " AND NOT a.cellular"
        idip = tn("anon_idip")
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(idip)} AS
                SELECT i.record_id, CAST(i.ip AS VARCHAR) AS ip, CAST(i.events AS DOUBLE) AS events,
                       CAST(i.first_seen AS TIMESTAMP) AS fs, CAST(i.last_seen AS TIMESTAMP) AS ls,
                       s.identifiers, coalesce(s.is_cellular, false) AS cellular
                FROM {q(ctx.tables["identifier_ip"])} i
                JOIN {q(ctx.tables["ip_stats"])} s ON s.ip = i.ip
                WHERE i.record_id IN (SELECT record_id FROM {q(ids)})""",
            step=f"{self.name}: identifier x ip",
        )
        # Identifier-level totals and first/last seen over every IP (cellular included).
        span = tn("anon_span")
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(span)} AS
                SELECT record_id, sum(events) AS total, min(fs) AS fs, max(ls) AS ls
                FROM {q(idip)} GROUP BY record_id""",
            step=f"{self.name}: spans",
        )
        gap = f"INTERVAL {round(float(self.max_gap_days) * 86400)} SECOND"
        shared = tn("anon_shared")

        def shared_sql(k: int, stage: int, only: str = "") -> str:
            return f"""SELECT a.record_id AS l, b.record_id AS r, a.ip, a.identifiers,
                              least(a.events, b.events) AS ev, {stage} AS stage,
                              greatest(a.fs, b.fs) - least(a.ls, b.ls) AS g
                       FROM {q(idip)} a JOIN {q(idip)} b
                         ON a.ip = b.ip AND a.record_id < b.record_id
                       WHERE a.identifiers <= {int(k)}{cell}
                         AND greatest(a.fs, b.fs) - least(a.ls, b.ls) <= {gap}{only}"""

        execute(
            con,
            f"CREATE OR REPLACE TEMP TABLE {q(shared)} AS {shared_sql(self.k1, 1)}",
            step=f"{self.name}: candidates (k1)",
        )
        if self.k2 > self.k1:
            lonely = f"""(SELECT record_id FROM {q(ids)} EXCEPT
                          (SELECT l FROM {q(shared)} UNION SELECT r FROM {q(shared)}))"""
            only = f" AND (a.record_id IN {lonely} OR b.record_id IN {lonely})"
            execute(
                con,
                f"INSERT INTO {q(shared)} SELECT * FROM ({shared_sql(self.k2, 2, only)}) "
                f"WHERE identifiers > {int(self.k1)}",
                step=f"{self.name}: candidates (k2)",
            )
        cand = tn("anon_cand")
        n = int(self.max_candidates)
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(cand)} AS
                WITH p AS (SELECT l, r, count(*) AS n_ips, min(stage) AS stage, sum(ev) AS ev,
                                  min(g) AS g
                           FROM {q(shared)} GROUP BY l, r),
                     both_sides AS (SELECT l AS x, r AS y, n_ips, g FROM p
                                    UNION ALL SELECT r, l, n_ips, g FROM p),
                     ranked AS (SELECT x, y, row_number() OVER (
                                    PARTITION BY x ORDER BY n_ips DESC, g, y) AS rk
                                FROM both_sides),
                     kept AS (SELECT DISTINCT least(x, y) AS l, greatest(x, y) AS r
                              FROM ranked WHERE rk <= {n})
                SELECT p.* FROM p JOIN kept USING (l, r)""",
            step=f"{self.name}: candidate cap",
        )
        diag["candidate_ip_rows"] = int(
            query_one(con, f"SELECT count(*) AS n FROM {q(shared)}")["n"]
        )
        execute(con, f"DROP TABLE {q(shared)}")

        # --- evidence tables (optional)
        hour_ok = "identifier_hour" in ctx.tables
        dom_ok = "identifier_domain" in ctx.tables
        hour_norm, dom_w = tn("anon_hour"), tn("anon_domw")
        if hour_ok:
            execute(
                con,
                f"""CREATE OR REPLACE TEMP TABLE {q(hour_norm)} AS
                    SELECT record_id, CAST(hour AS INTEGER) AS hour,
                           events / sqrt(sum(events * events) OVER (PARTITION BY record_id)) AS w
                    FROM {q(ctx.tables["identifier_hour"])}
                    WHERE events > 0 AND record_id IN (SELECT record_id FROM {q(ids)})""",
                step=f"{self.name}: hour profiles",
            )
        if dom_ok:
            execute(
                con,
                f"""CREATE OR REPLACE TEMP TABLE {q(dom_w)} AS
                    WITH d AS (SELECT DISTINCT record_id, CAST(domain AS VARCHAR) AS domain
                               FROM {q(ctx.tables["identifier_domain"])}
                               WHERE record_id IN (SELECT record_id FROM {q(ids)})),
                         df AS (SELECT domain, count(*) AS df FROM d GROUP BY domain),
                         nn AS (SELECT count(DISTINCT record_id) AS n FROM d)
                    SELECT d.record_id, d.domain, ln(1 + nn.n / df.df) AS w,
                           sum(ln(1 + nn.n / df.df)) OVER (PARTITION BY d.record_id) AS tot
                    FROM d JOIN df USING (domain) CROSS JOIN nn""",
                step=f"{self.name}: domain weights",
            )
        hour_sql = (
            f"""SELECT c.l, c.r, sum(a.w * b.w) AS cos FROM {q(cand)} c
                JOIN {q(hour_norm)} a ON a.record_id = c.l
                JOIN {q(hour_norm)} b ON b.record_id = c.r AND b.hour = a.hour
                GROUP BY c.l, c.r"""
            if hour_ok
            else "SELECT NULL::BIGINT AS l, NULL::BIGINT AS r, NULL::DOUBLE AS cos WHERE false"
        )
        dom_sql = (
            f"""SELECT c.l, c.r, sum(a.w) / (any_value(a.tot) + any_value(b.tot) - sum(a.w)) AS jac
                FROM {q(cand)} c
                JOIN {q(dom_w)} a ON a.record_id = c.l
                JOIN {q(dom_w)} b ON b.record_id = c.r AND b.domain = a.domain
                GROUP BY c.l, c.r"""
            if dom_ok
            else "SELECT NULL::BIGINT AS l, NULL::BIGINT AS r, NULL::DOUBLE AS jac WHERE false"
        )
        chain = f"INTERVAL {round(float(self.chain_gap_days) * 86400)} SECOND"
        dev_known = bool(dev_cols)
        feats = tn("anon_features")
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(feats)} AS
                WITH h AS ({hour_sql}), d AS ({dom_sql}),
                x AS (
                    SELECT c.l, c.r, c.n_ips, c.stage, c.ev / greatest(least(sl.total, sr.total), 1) AS cooc,
                           h.cos, d.jac,
                           CASE WHEN il.device_type IS NOT DISTINCT FROM ir.device_type
                                     AND il.os IS NOT DISTINCT FROM ir.os
                                     AND il.browser IS NOT NULL
                                     AND il.browser = ir.browser THEN 0
                                WHEN il.device_type = ir.device_type
                                     AND il.os IS NOT DISTINCT FROM ir.os THEN 1
                                ELSE 2 END AS dev,
                           CASE WHEN least(sl.ls, sr.ls) >= greatest(sl.fs, sr.fs) THEN 0
                                WHEN greatest(sl.fs, sr.fs) - least(sl.ls, sr.ls) <= {chain} THEN 2
                                ELSE 1 END AS tim
                    FROM {q(cand)} c
                    JOIN {q(span)} sl ON sl.record_id = c.l
                    JOIN {q(span)} sr ON sr.record_id = c.r
                    JOIN {q(ids)} il ON il.record_id = c.l
                    JOIN {q(ids)} ir ON ir.record_id = c.r
                    LEFT JOIN h ON h.l = c.l AND h.r = c.r
                    LEFT JOIN d ON d.l = c.l AND d.r = c.r)
                SELECT l AS record_id_l, r AS record_id_r,
                       (least(n_ips, 3) - 1) * 2 + CASE WHEN stage = 1 THEN 1 ELSE 0 END AS ips,
                       CASE WHEN cooc < 0.2 THEN 0 WHEN cooc < 0.6 THEN 1 ELSE 2 END AS cooc,
                       {"dev * 3 + tim" if dev_known else "9"} AS device_time,
                       CASE WHEN {"false" if hour_ok else "true"} THEN 3
                            WHEN coalesce(cos, 0) < 0.5 THEN 0 WHEN cos < 0.8 THEN 1
                            WHEN cos < 0.95 THEN 2 ELSE 3 END AS hour,
                       CASE WHEN {"false" if dom_ok else "true"} THEN 3
                            WHEN coalesce(jac, 0) = 0 THEN 0 WHEN jac < 0.05 THEN 1
                            WHEN jac < 0.15 THEN 2 ELSE 3 END AS domain
                FROM x""",
            step=f"{self.name}: features",
        )
        for t in (cand, idip, span, hour_norm, dom_w):
            execute(con, f"DROP TABLE IF EXISTS {q(t)}")
        # --- EM over the distinct patterns
        fnames = list(FEATURES)
        cols = ", ".join(fnames)
        pat = query(
            con, f"SELECT {cols}, count(*) AS n FROM {q(feats)} GROUP BY ALL ORDER BY {cols}"
        )
        counts = np.asarray(pat.column("n").to_pylist(), dtype=float)
        patterns = {
            f: np.asarray(pat.column(f).to_pylist(), dtype=np.int64).reshape(-1) for f in fnames
        }
        n_pairs = int(counts.sum())
        post, model = self.pattern_model(ctx, feats, patterns, counts)
        diag.update(candidate_pairs=n_pairs, patterns=len(counts), **model)
        scores = tn("anon_pattern_scores")
        execute(
            con,
            f"CREATE OR REPLACE TEMP TABLE {q(scores)} ({', '.join(f + ' INTEGER' for f in fnames)}, "
            "score DOUBLE)",
        )
        if len(counts):
            execute(
                con,
                f"INSERT INTO {q(scores)} SELECT * FROM (SELECT "
                + ", ".join(f"unnest(?::INTEGER[]) AS {f}" for f in fnames)
                + ", unnest(?::DOUBLE[]) AS score)",
                [*[patterns[f].tolist() for f in fnames], [float(x) for x in post]],
                step=f"{self.name}: pattern scores",
            )
        pairs = tn("anon_pairs")
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(pairs)} AS
                SELECT f.record_id_l, f.record_id_r, s.score, {", ".join("f." + f for f in fnames)}
                FROM {q(feats)} f JOIN {q(scores)} s USING ({cols})""",
            step=f"{self.name}: pair scores",
        )
        for t in (feats, scores):
            execute(con, f"DROP TABLE IF EXISTS {q(t)}")
        execute(con, f"DROP TABLE IF EXISTS {q(ids)}")
        diag["seconds_scoring"] = round(time.perf_counter() - t0, 3)
        return pairs, diag

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
            f"SELECT record_id_l AS a, record_id_r AS b, score FROM {q(pairs)}",
        )
        cc = capped_components(
            con,
            edges,
            ctx.temp_name,
            threshold=float(self.threshold),
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
        execute(con, f"DROP TABLE IF EXISTS {q(cc.table)}")
        diag["seconds"] = round(time.perf_counter() - t0, 3)
        rel_pairs = con.sql(f"SELECT record_id_l, record_id_r, score FROM {q(pairs)}")
        return MatchResult(clusters=clusters, pairs=rel_pairs, diagnostics=diag)


# ----------------------------------------------------------------------------- supervised
def fellegi_sunter_supervised(
    patterns: dict[str, np.ndarray],
    matches: np.ndarray,
    non_matches: np.ndarray,
    *,
    levels: dict[str, int],
    sample_fraction: float,
) -> dict[str, Any]:
    """m, u and lambda estimated from labelled candidate pairs.

    Parameters
    ----------
    patterns
        Feature name -> level per distinct pattern.
    matches, non_matches
        Labelled candidate pairs per pattern whose two identifiers belong to the same
        person / to different persons.
    levels
        Feature name -> number of levels.
    sample_fraction
        Share of persons in the training sample. Both identifiers of a labelled pair
        must be drawn: a true pair is labelled with probability ``f`` (its one person
        drawn), a false pair with ``f**2`` (two persons drawn), so among labelled pairs
        true ones are over-represented by ``1 / f``. The match share ``lambda`` is
        corrected for that; m and u (distributions within each class) are not biased.

    Returns
    -------
    dict
        ``m``, ``u`` (feature -> probability per level, Laplace-smoothed with one
        pseudo-pair per level) and ``lambda``.
    """
    f = float(sample_fraction)
    n_m, n_u = float(matches.sum()), float(non_matches.sum())
    m = {
        feat: (np.bincount(patterns[feat], weights=matches, minlength=k) + 1.0) / (n_m + k)
        for feat, k in levels.items()
    }
    u = {
        feat: (np.bincount(patterns[feat], weights=non_matches, minlength=k) + 1.0) / (n_u + k)
        for feat, k in levels.items()
    }
    true_pairs, false_pairs = n_m / f, n_u / (f * f)
    lam = float(np.clip(true_pairs / max(true_pairs + false_pairs, 1e-12), 1e-6, 1 - 1e-6))
    return {"m": m, "u": u, "lambda": lam}


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
    version: ClassVar[str] = "1"
    tags: ClassVar[frozenset[str]] = frozenset({"events", "emits_pairs", "needs_labels"})

    def __init__(
        self,
        *,
        threshold: float = 0.3,
        sources: Sequence[str] | None = None,
        k1: int = 100,
        k2: int = 500,
        include_cellular: bool = False,
        max_gap_days: float = 30.0,
        chain_gap_days: float = 14.0,
        max_candidates: int = 50,
        em_iterations: int = 0,
        em_min_pairs: int = 200,
        max_cluster_size: int | None = 1000,
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
        con = ctx.con
        fnames = list(FEATURES)
        cols = ", ".join(fnames)
        # the same patterns in the same order as `patterns`, with their labelled pairs
        rows = query(
            con,
            f"""SELECT {cols},
                       count(*) FILTER (WHERE a.entity_id = b.entity_id) AS m,
                       count(*) FILTER (WHERE a.entity_id <> b.entity_id) AS u
                FROM {q(feats)} f
                LEFT JOIN {q(ctx.labels)} a ON a.record_id = f.record_id_l
                LEFT JOIN {q(ctx.labels)} b ON b.record_id = f.record_id_r
                GROUP BY ALL ORDER BY {cols}""",
            step=f"{self.name}: labelled pairs per pattern",
        )
        for f in fnames:
            same = np.asarray(rows.column(f).to_pylist(), dtype=np.int64)
            if not np.array_equal(same, patterns[f]):  # pragma: no cover - same query shape
                msg = f"{self.name}: labelled patterns are not aligned with the candidates"
                raise RuntimeError(msg)
        matches = np.asarray(rows.column("m").to_pylist(), dtype=float)
        non_matches = np.asarray(rows.column("u").to_pylist(), dtype=float)
        sources = ", ".join(literal(s) for s in self._sources())
        share = query_one(
            con,
            f"""SELECT count(l.record_id) AS labelled, count(*) AS n
                FROM {q(ctx.records)} r
                LEFT JOIN (SELECT DISTINCT record_id FROM {q(ctx.labels)}) l
                  ON l.record_id = r.record_id
                WHERE r.source IN ({sources})""",
            step=f"{self.name}: labelled share",
        )
        labelled, n_ids = int(share["labelled"] or 0), int(share["n"] or 0)
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
