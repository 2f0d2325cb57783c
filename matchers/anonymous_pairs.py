"""Scored candidate pairs of anonymous identifiers, built as named SQL stages.

The pipeline of :class:`matchers.anonymous.Anonymous` (steps 1-3 of its module
docstring) is a list of stages, each a small function returning one
:class:`~matchers.sql_steps.SQLStep` (the ``SELECT`` that fills one temp table, and the
stage's name), run in order so that an error names its stage (:mod:`matchers.sql_steps`).

1. **Candidates** (:func:`candidate_steps`): ``identifiers`` (records to link, with
   their device columns), ``identifier x ip`` (their IPs with the IP statistics),
   ``spans`` (events and first/last seen per identifier), ``candidates (k1)`` and
   ``candidates (k2)`` (identifier pairs per shared IP, strict then relaxed),
   ``candidate cap`` (the best ``max_candidates`` partners per identifier).
2. **Features** (:func:`feature_steps`): ``hour profiles`` and ``domain weights``
   (only when the evidence tables exist), then ``features`` (one level per feature of
   :data:`FEATURES` and pair).
3. **Scoring** (:func:`scoring_steps`): the candidate pairs are counted per feature
   pattern, a pattern model (EM, priors or labels: the matcher's ``pattern_model``)
   gives each pattern its posterior, and ``pattern scores`` / ``pair scores`` join it
   back to the pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.api import (
    MatchContext,
    UnsupportedInput,
    exact_sum,
    literal,
    query,
    query_one,
    quote_ident,
)
from matchers.cooccurrence import local_degree_sql
from matchers.sql_steps import SQLStep, drop_tables, run_steps

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEVICE_COLUMNS",
    "FEATURES",
    "PairOptions",
    "PairTables",
    "PatternModel",
    "candidate_steps",
    "feature_steps",
    "pattern_counts",
    "score_pairs",
    "scoring_steps",
]

q = quote_ident

#: Feature name -> number of levels (0 = weakest evidence).
FEATURES: dict[str, int] = {"ips": 6, "cooc": 3, "device_time": 10, "hour": 4, "domain": 4}

# device_time levels: device relation x time relation of the spans.
#   0 same browser, overlapping   1 same browser, far apart   2 same browser, sequential
#   3 same platform, overlapping  4 same platform, far        5 same platform, sequential
#   6 different device, overlap   7 different, far            8 different, sequential
#   9 device unknown (columns absent)

#: Source of the identifiers that persist for a device's life (mobile ad ids): a cookie
#: on the same platform that co-occurs with one is attached to it first.
ANCHOR_SOURCE = "maid"

#: Record columns that describe an identifier's device (absent ones read as NULL).
DEVICE_COLUMNS: tuple[str, ...] = ("device_type", "os", "browser")

#: Posterior match probability per pattern and the model's diagnostics, from the
#: context, the features table and the distinct patterns with their pair counts.
PatternModel = Callable[
    [MatchContext, str, dict[str, np.ndarray], np.ndarray], tuple[np.ndarray, dict[str, Any]]
]


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class PairOptions:
    """The matcher's parameters the pipeline reads (see :class:`~matchers.anonymous.Anonymous`).

    ``matcher`` is the matcher's name (it prefixes the stage names in errors),
    ``sources`` the record sources that are anonymous identifiers.
    """

    matcher: str
    sources: list[str]
    k1: int
    k2: int
    include_cellular: bool
    max_gap_days: float
    chain_gap_days: float
    max_candidates: int


@dataclass(frozen=True)
class PairTables:
    """The temp tables of one scoring run, one per stage (:meth:`named`)."""

    ids: str
    idip: str
    span: str
    shared: str
    cand: str
    hour: str
    domain: str
    features: str
    scores: str
    pairs: str

    @classmethod
    def named(cls, ctx: MatchContext) -> PairTables:
        """The names in ``ctx``'s namespace."""
        return cls(
            ids=ctx.temp_name("anon_ids"),
            idip=ctx.temp_name("anon_idip"),
            span=ctx.temp_name("anon_span"),
            shared=ctx.temp_name("anon_shared"),
            cand=ctx.temp_name("anon_cand"),
            hour=ctx.temp_name("anon_hour"),
            domain=ctx.temp_name("anon_domw"),
            features=ctx.temp_name("anon_features"),
            scores=ctx.temp_name("anon_pattern_scores"),
            pairs=ctx.temp_name("anon_pairs"),
        )


def _interval(days: float) -> str:
    return f"INTERVAL {round(float(days) * 86400)} SECOND"


# ----------------------------------------------------------------------------- candidates
def identifiers_sql(ctx: MatchContext, options: PairOptions, columns: set[str]) -> str:
    """Query of the ``record_id`` of the records whose ``source`` is an identifier source."""
    if "source" not in columns:
        msg = f"{options.matcher}: records lack column source"
        raise UnsupportedInput(msg)
    sources = ", ".join(literal(s) for s in options.sources)
    return f"SELECT record_id FROM {q(ctx.records)} WHERE source IN ({sources})"


def identifiers_step(
    ctx: MatchContext, t: PairTables, ids_sql: str, devices: Sequence[str]
) -> SQLStep:
    """The identifiers to link, with their device columns (NULL where absent)."""
    dev_sel = ", ".join(
        f"r.{q(c)}" if c in devices else f"CAST(NULL AS VARCHAR) AS {q(c)}" for c in DEVICE_COLUMNS
    )
    return SQLStep(
        "identifiers",
        t.ids,
        f"""SELECT r.record_id, r.source = {literal(ANCHOR_SOURCE)} AS persistent, {dev_sel}
            FROM {q(ctx.records)} r
            WHERE r.record_id IN ({ids_sql})""",
    )


def identifier_ip_step(ctx: MatchContext, t: PairTables, options: PairOptions) -> SQLStep:
    """Identifier x IP rows with the IP's local degree and cellular flag.

    ``identifiers`` is the IP's *local* degree (:func:`matchers.cooccurrence.local_degree_sql`):
    the identifiers seen on it within ``max_gap_days`` of this identifier, not over the
    whole horizon. Home addresses are renumbered and handed to other households, so an
    IP that saw 300 identifiers in a year may have been one household's for the month
    that matters.
    """
    rows = f"""SELECT i.record_id, CAST(i.ip AS VARCHAR) AS ip, CAST(i.events AS DOUBLE) AS events,
                      CAST(i.first_seen AS TIMESTAMP) AS fs, CAST(i.last_seen AS TIMESTAMP) AS ls,
                      coalesce(s.is_cellular, false) AS cellular
               FROM {q(ctx.tables["identifier_ip"])} i
               JOIN {q(ctx.tables["ip_stats"])} s ON s.ip = i.ip
               WHERE i.record_id IN (SELECT record_id FROM {q(t.ids)})"""
    return SQLStep(
        "identifier x ip",
        t.idip,
        f"""SELECT * EXCLUDE (deg), deg AS identifiers
            FROM ({local_degree_sql(rows, _interval(options.max_gap_days))})""",
    )


def spans_step(t: PairTables) -> SQLStep:
    """Identifier-level totals and first/last seen over every IP (cellular included)."""
    return SQLStep(
        "spans",
        t.span,
        f"""SELECT record_id, sum(events) AS total, min(fs) AS fs, max(ls) AS ls
            FROM {q(t.idip)} GROUP BY record_id""",
    )


def shared_ip_sql(t: PairTables, options: PairOptions, k: int, stage: int, only: str = "") -> str:
    """Identifier pairs seen on one IP of at most ``k`` identifiers, close in time."""
    cell = "" if options.include_cellular else " AND NOT a.cellular"
    gap = _interval(options.max_gap_days)
    # the two range conditions say max(first seen) - min(last seen) <= gap
    return f"""SELECT a.record_id AS l, b.record_id AS r, a.ip,
                      greatest(a.identifiers, b.identifiers) AS identifiers,
                      least(a.events, b.events) AS ev, {stage} AS stage,
                      1 / ln(1 + greatest(a.identifiers, b.identifiers)) AS w,
                      greatest(a.fs, b.fs) - least(a.ls, b.ls) AS g
               FROM {q(t.idip)} a JOIN {q(t.idip)} b
                 ON a.ip = b.ip AND a.record_id < b.record_id
               WHERE a.identifiers <= {int(k)} AND b.identifiers <= {int(k)}{cell}
                 AND a.fs <= b.ls + {gap} AND b.fs <= a.ls + {gap}{only}"""


def strict_candidates_step(t: PairTables, options: PairOptions) -> SQLStep:
    """Pairs sharing an IP of at most ``k1`` identifiers (stage 1)."""
    return SQLStep("candidates (k1)", t.shared, shared_ip_sql(t, options, options.k1, 1))


def relaxed_candidates_step(t: PairTables, options: PairOptions) -> SQLStep:
    """Pairs through IPs of at most ``k2`` identifiers, for identifiers left without one."""
    lonely = f"""(SELECT record_id FROM {q(t.ids)} EXCEPT
                  (SELECT l FROM {q(t.shared)} UNION SELECT r FROM {q(t.shared)}))"""
    only = f" AND (a.record_id IN {lonely} OR b.record_id IN {lonely})"
    return SQLStep(
        "candidates (k2)",
        t.shared,
        f"SELECT * FROM ({shared_ip_sql(t, options, options.k2, 2, only)}) "
        f"WHERE identifiers > {int(options.k1)}",
        append=True,
    )


def candidate_cap_step(t: PairTables, options: PairOptions) -> SQLStep:
    """Candidate pairs kept by either side among its ``max_candidates`` best partners."""
    return SQLStep(
        "candidate cap",
        t.cand,
        f"""WITH p AS (SELECT l, r, count(*) AS n_ips, min(stage) AS stage, sum(ev) AS ev,
                              min(g) AS g, {exact_sum("w")} AS strength
                       FROM {q(t.shared)} GROUP BY l, r),
                 both_sides AS (SELECT l AS x, r AS y, strength, g FROM p
                                UNION ALL SELECT r, l, strength, g FROM p),
                 ranked AS (SELECT x, y, row_number() OVER (
                                PARTITION BY x ORDER BY strength DESC, g, y) AS rk
                            FROM both_sides),
                 kept AS (SELECT DISTINCT least(x, y) AS l, greatest(x, y) AS r
                          FROM ranked WHERE rk <= {int(options.max_candidates)})
            SELECT p.* FROM p JOIN kept USING (l, r)""",
    )


def candidate_steps(
    ctx: MatchContext,
    t: PairTables,
    options: PairOptions,
    ids_sql: str,
    devices: Sequence[str],
) -> list[SQLStep]:
    """Stages of step 1: identifiers, their IPs and spans, candidate pairs, the cap."""
    steps = [
        identifiers_step(ctx, t, ids_sql, devices),
        identifier_ip_step(ctx, t, options),
        spans_step(t),
        strict_candidates_step(t, options),
    ]
    if options.k2 > options.k1:
        steps.append(relaxed_candidates_step(t, options))
    steps.append(candidate_cap_step(t, options))
    return steps


# ----------------------------------------------------------------------------- features
def hour_profiles_step(ctx: MatchContext, t: PairTables) -> SQLStep:
    """Unit-length hour-of-day event vectors of the identifiers."""
    return SQLStep(
        "hour profiles",
        t.hour,
        f"""SELECT record_id, CAST(hour AS INTEGER) AS hour,
                   events / sqrt(sum(events * events) OVER (PARTITION BY record_id)) AS w
            FROM {q(ctx.tables["identifier_hour"])}
            WHERE events > 0 AND record_id IN (SELECT record_id FROM {q(t.ids)})""",
    )


def domain_weights_step(ctx: MatchContext, t: PairTables) -> SQLStep:
    """Per identifier and visited domain: IDF weight ``w`` (and its total) and unit TF-IDF ``u``.

    ``w = ln(1 + N / df)`` feeds the weighted Jaccard; ``u`` is the TF-IDF weight (days
    visited x ``ln(N / df)``) divided by the identifier's vector length, so a sum of
    products over shared domains is the cosine.
    """
    return SQLStep(
        "domain weights",
        t.domain,
        f"""WITH d AS (SELECT record_id, CAST(domain AS VARCHAR) AS domain,
                              max(CAST(days AS DOUBLE)) AS tf
                       FROM {q(ctx.tables["identifier_domain"])}
                       WHERE record_id IN (SELECT record_id FROM {q(t.ids)})
                       GROUP BY ALL),
                 df AS (SELECT domain, count(*) AS df FROM d GROUP BY domain),
                 nn AS (SELECT count(DISTINCT record_id) AS n FROM d),
                 x AS (SELECT d.record_id, d.domain, ln(1 + nn.n / df.df) AS w,
                              d.tf * ln(nn.n / df.df) AS tfidf
                       FROM d JOIN df USING (domain) CROSS JOIN nn)
            SELECT record_id, domain, w, {exact_sum("w", "PARTITION BY record_id")} AS tot,
                   tfidf / nullif(sqrt({exact_sum("tfidf * tfidf", "PARTITION BY record_id")}), 0) AS u
            FROM x""",
    )


def hour_cosine_sql(t: PairTables, *, present: bool) -> str:
    """``(l, r, cos)`` of the candidate pairs; no rows without hour profiles."""
    if not present:
        return "SELECT NULL::BIGINT AS l, NULL::BIGINT AS r, NULL::DOUBLE AS cos WHERE false"
    return f"""SELECT c.l, c.r, {exact_sum("a.w * b.w")} AS cos FROM {q(t.cand)} c
               JOIN {q(t.hour)} a ON a.record_id = c.l
               JOIN {q(t.hour)} b ON b.record_id = c.r AND b.hour = a.hour
               GROUP BY c.l, c.r"""


def domain_jaccard_sql(t: PairTables, *, present: bool) -> str:
    """``(l, r, jac)``: IDF-weighted Jaccard of the candidate pairs; no rows without domains."""
    if not present:
        return (
            "SELECT NULL::BIGINT AS l, NULL::BIGINT AS r, NULL::DOUBLE AS jac, "
            "NULL::DOUBLE AS dcos WHERE false"
        )
    return f"""SELECT c.l, c.r, {exact_sum("a.w")} / (any_value(a.tot) + any_value(b.tot) - {exact_sum("a.w")}) AS jac,
                      coalesce({exact_sum("a.u * b.u")}, 0) AS dcos
               FROM {q(t.cand)} c
               JOIN {q(t.domain)} a ON a.record_id = c.l
               JOIN {q(t.domain)} b ON b.record_id = c.r AND b.domain = a.domain
               GROUP BY c.l, c.r"""


def features_step(
    t: PairTables, options: PairOptions, *, device_known: bool, hour_ok: bool, dom_ok: bool
) -> SQLStep:
    """One level per feature of :data:`FEATURES` for every candidate pair.

    One statement: the raw evidence (``x``) and its discretisation read the same joins.
    """
    chain = _interval(options.chain_gap_days)
    return SQLStep(
        "features",
        t.features,
        f"""WITH h AS ({hour_cosine_sql(t, present=hour_ok)}),
                 d AS ({domain_jaccard_sql(t, present=dom_ok)}),
            x AS (
                SELECT c.l, c.r, c.n_ips, c.stage, c.strength, c.ev / greatest(least(sl.total, sr.total), 1) AS cooc,
                       h.cos, d.jac, d.dcos,
                       CASE WHEN il.device_type IS NOT DISTINCT FROM ir.device_type
                                 AND il.os IS NOT DISTINCT FROM ir.os
                                 AND il.browser IS NOT NULL
                                 AND il.browser = ir.browser THEN 0
                            WHEN il.device_type = ir.device_type
                                 AND il.os IS NOT DISTINCT FROM ir.os THEN 1
                            ELSE 2 END AS dev,
                       il.persistent <> ir.persistent AND il.device_type = ir.device_type
                           AND il.os IS NOT DISTINCT FROM ir.os AS same_device,
                       CASE WHEN least(sl.ls, sr.ls) >= greatest(sl.fs, sr.fs) THEN 0
                            WHEN greatest(sl.fs, sr.fs) - least(sl.ls, sr.ls) <= {chain} THEN 2
                            ELSE 1 END AS tim
                FROM {q(t.cand)} c
                JOIN {q(t.span)} sl ON sl.record_id = c.l
                JOIN {q(t.span)} sr ON sr.record_id = c.r
                JOIN {q(t.ids)} il ON il.record_id = c.l
                JOIN {q(t.ids)} ir ON ir.record_id = c.r
                LEFT JOIN h ON h.l = c.l AND h.r = c.r
                LEFT JOIN d ON d.l = c.l AND d.r = c.r)
            SELECT l AS record_id_l, r AS record_id_r, same_device,
                   strength + coalesce(dcos, 0) AS strength,
                   (least(n_ips, 3) - 1) * 2 + CASE WHEN stage = 1 THEN 1 ELSE 0 END AS ips,
                   CASE WHEN cooc < 0.2 THEN 0 WHEN cooc < 0.6 THEN 1 ELSE 2 END AS cooc,
                   {"dev * 3 + tim" if device_known else "9"} AS device_time,
                   CASE WHEN {"false" if hour_ok else "true"} THEN 3
                        WHEN coalesce(cos, 0) < 0.5 THEN 0 WHEN cos < 0.8 THEN 1
                        WHEN cos < 0.95 THEN 2 ELSE 3 END AS hour,
                   CASE WHEN {"false" if dom_ok else "true"} THEN 3
                        WHEN coalesce(jac, 0) = 0 THEN 0 WHEN jac < 0.05 THEN 1
                        WHEN jac < 0.15 THEN 2 ELSE 3 END AS domain
            FROM x""",
    )


def feature_steps(
    ctx: MatchContext, t: PairTables, options: PairOptions, *, device_known: bool
) -> list[SQLStep]:
    """Stages of step 2: the optional evidence profiles, then the feature levels.

    A missing evidence table gives its feature a constant level, which EM learns to
    ignore.
    """
    hour_ok = "identifier_hour" in ctx.tables
    dom_ok = "identifier_domain" in ctx.tables
    steps = []
    if hour_ok:
        steps.append(hour_profiles_step(ctx, t))
    if dom_ok:
        steps.append(domain_weights_step(ctx, t))
    steps.append(
        features_step(t, options, device_known=device_known, hour_ok=hour_ok, dom_ok=dom_ok)
    )
    return steps


# ----------------------------------------------------------------------------- scoring
def pattern_counts(
    con: duckdb.DuckDBPyConnection, features: str, *, matcher: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The distinct feature patterns (sorted) and their numbers of candidate pairs."""
    cols = ", ".join(FEATURES)
    pat = query(
        con,
        f"SELECT {cols}, count(*) AS n FROM {q(features)} GROUP BY ALL ORDER BY {cols}",
        step=f"{matcher}: patterns",
    )
    counts = np.asarray(pat.column("n").to_pylist(), dtype=float)
    patterns = {
        f: np.asarray(pat.column(f).to_pylist(), dtype=np.int64).reshape(-1) for f in FEATURES
    }
    return patterns, counts


def pattern_scores_step(
    t: PairTables, patterns: dict[str, np.ndarray], posterior: np.ndarray
) -> SQLStep:
    """The posterior of each pattern as a table (typed, and empty without patterns)."""
    columns = ", ".join(f"unnest(?::INTEGER[]) AS {f}" for f in FEATURES)
    return SQLStep(
        "pattern scores",
        t.scores,
        f"SELECT {columns}, unnest(?::DOUBLE[]) AS score",
        params=[*[patterns[f].tolist() for f in FEATURES], [float(x) for x in posterior]],
    )


def pair_scores_step(t: PairTables) -> SQLStep:
    """Every candidate pair with its pattern's score and its feature levels."""
    return SQLStep(
        "pair scores",
        t.pairs,
        f"""SELECT f.record_id_l, f.record_id_r, s.score, f.strength, f.same_device,
                   {", ".join("f." + f for f in FEATURES)}
            FROM {q(t.features)} f JOIN {q(t.scores)} s USING ({", ".join(FEATURES)})""",
    )


def scoring_steps(
    t: PairTables, patterns: dict[str, np.ndarray], posterior: np.ndarray
) -> list[SQLStep]:
    """Stages of step 3 once the patterns are scored: pattern scores, then pair scores."""
    return [pattern_scores_step(t, patterns, posterior), pair_scores_step(t)]


# ----------------------------------------------------------------------------- pipeline
def score_pairs(
    ctx: MatchContext,
    options: PairOptions,
    *,
    model: PatternModel,
    ids_sql: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Run the stages; return the table of scored candidate pairs and diagnostics.

    Parameters
    ----------
    ctx
        Match context (with ``identifier_ip`` and ``ip_stats``).
    options
        The matcher's parameters.
    model
        Scores the feature patterns (the matcher's ``pattern_model``).
    ids_sql
        Optional query returning the ``record_id`` of the identifiers to consider;
        default: records whose ``source`` is in ``options.sources``.

    Returns
    -------
    table, diagnostics
        ``table`` has ``record_id_l < record_id_r``, ``score`` (posterior match
        probability) and the feature levels.
    """
    con, matcher = ctx.con, options.matcher
    t0 = time.perf_counter()
    have = set(ctx.columns())
    if ids_sql is None:
        ids_sql = identifiers_sql(ctx, options, have)
    t = PairTables.named(ctx)
    devices = [c for c in DEVICE_COLUMNS if c in have]
    run_steps(con, candidate_steps(ctx, t, options, ids_sql, devices), matcher=matcher)
    diag: dict[str, Any] = {
        "candidate_ip_rows": int(
            query_one(
                con,
                f"SELECT count(*) AS n FROM {q(t.shared)}",
                step=f"{matcher}: candidate ip rows",
            )["n"]
        )
    }
    drop_tables(con, t.shared)
    run_steps(con, feature_steps(ctx, t, options, device_known=bool(devices)), matcher=matcher)
    drop_tables(con, t.cand, t.idip, t.span, t.hour, t.domain)
    patterns, counts = pattern_counts(con, t.features, matcher=matcher)
    posterior, fitted = model(ctx, t.features, patterns, counts)
    diag.update(candidate_pairs=int(counts.sum()), patterns=len(counts), **fitted)
    run_steps(con, scoring_steps(t, patterns, posterior), matcher=matcher)
    drop_tables(con, t.features, t.scores, t.ids)
    diag["seconds_scoring"] = round(time.perf_counter() - t0, 3)
    return t.pairs, diag
