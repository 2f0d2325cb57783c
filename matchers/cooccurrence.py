"""``ip-cooccurrence``: the floor of the cross-device lens, in one screen of SQL.

What a first attempt at the ICDM 2015 Drawbridge / CIKM Cup 2016 task looks like, kept
deliberately simple so that every report shows how much a real matcher adds over it:

1. **Co-occurrence.** Two anonymous identifiers (records whose ``source`` is in
   ``sources``) co-occur on a non-cellular IP when their first/last seen on it are at
   most ``window_days`` apart (home addresses are renumbered and handed to another
   household, so a shared IP months apart is no evidence).
2. **Local degree.** Each co-occurrence is weighted by how private the IP was *at that
   time*: ``1 / ln(1 + d)``, ``d`` the larger of the two identifiers' local degrees (the
   distinct identifiers seen on the IP within ``window_days`` of the identifier), so a
   home IP weighs a lot and a hotspot or office next to nothing. The pair's IP score is
   the sum over its shared IPs.
3. **Domains (optional).** ``domain_weight`` times the cosine of the identifiers'
   TF-IDF vectors of visited domains (days visited x ``ln(N / df)``) is added.
4. **Clustering.** Each identifier keeps its one best partner (top-1 link, ties to the
   smaller id); the connected components of those links are the clusters
   (:func:`bench.api.connected_components`). Every other record stays single.

No model, no threshold, no cap: a top-1 graph has no long chains of weak links, which
is what makes it a fair floor. Every co-occurring pair is emitted with its score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    connected_components,
    exact_sum,
    execute,
    literal,
    quote_ident,
)
from matchers.sql_steps import SQLStep, drop_tables, run_steps

__all__ = ["IPCooccurrence", "local_degree_sql"]

q = quote_ident


def local_degree_sql(rows_sql: str, window: str) -> str:
    """``rows_sql`` (``record_id, ip, fs, ls, ...``) with ``deg``: the IP's local degree.

    ``deg`` counts the identifiers whose span on the IP comes within ``window`` (an SQL
    interval) of the row's own span, itself included: those seen there from ``fs -
    window`` to ``ls + window``. Two as-of joins against the per-IP running counts of
    first and last sightings give it without pairing the identifiers of an IP, so a
    hotspot of 10k identifiers costs O(n log n), not O(n^2).
    """
    return f"""WITH x AS ({rows_sql}),
                    st AS (SELECT DISTINCT ip, fs AS t,
                                  count(*) OVER (PARTITION BY ip ORDER BY fs) AS n FROM x),
                    en AS (SELECT DISTINCT ip, ls AS t,
                                  count(*) OVER (PARTITION BY ip ORDER BY ls) AS n FROM x)
               SELECT x.*, s.n - coalesce(e.n, 0) AS deg
               FROM x ASOF JOIN st s ON s.ip = x.ip AND s.t <= x.ls + {window}
               ASOF LEFT JOIN en e ON e.ip = x.ip AND e.t < x.fs - {window}"""


class IPCooccurrence(BaseMatcher):
    """IP co-occurrence weighted by local IP degree, top-1 link, connected components.

    Parameters
    ----------
    sources
        Record sources that are anonymous identifiers; ``None``: ``cookie``, ``maid``.
    window_days
        Two identifiers co-occur on an IP when their first/last seen on it are at most
        this many days apart; also the window of the local degree.
    domain_weight
        Weight of the domain TF-IDF cosine added to the IP score (0: IPs only).
    max_degree
        IP rows of a higher local degree are skipped (a hotspot's weight is near zero
        anyway, and pairing its identifiers would cost O(n^2)).
    """

    name: ClassVar[str] = "ip-cooccurrence"
    version: ClassVar[str] = "1"
    lens: ClassVar[str] = "baseline"
    tags: ClassVar[frozenset[str]] = frozenset({"events", "emits_pairs"})

    def __init__(
        self,
        *,
        sources: Sequence[str] | None = None,
        window_days: float = 30.0,
        domain_weight: float = 1.0,
        max_degree: int = 500,
    ) -> None:
        self.sources = sources
        self.window_days = window_days
        self.domain_weight = domain_weight
        self.max_degree = max_degree

    def _steps(self, ctx: MatchContext, names: dict[str, str]) -> list[SQLStep]:
        """The SQL stages: co-occurrences, local degrees, pair scores, top-1 links."""
        src = ("cookie", "maid") if self.sources is None else self.sources
        sources = ", ".join(literal(s) for s in ([src] if isinstance(src, str) else src))
        window = f"INTERVAL {round(float(self.window_days) * 86400)} SECOND"
        ip, stats = q(ctx.tables["identifier_ip"]), q(ctx.tables["ip_stats"])
        rows = f"""SELECT i.record_id, i.ip, CAST(i.first_seen AS TIMESTAMP) AS fs,
                          CAST(i.last_seen AS TIMESTAMP) AS ls
                   FROM {ip} i JOIN {stats} s ON s.ip = i.ip
                   WHERE NOT coalesce(s.is_cellular, false) AND i.record_id IN (
                       SELECT record_id FROM {q(ctx.records)} WHERE source IN ({sources}))"""
        steps = [
            SQLStep("local degrees", names["deg"], local_degree_sql(rows, window)),
            SQLStep(
                "co-occurrences",
                names["cooc"],
                f"""WITH x AS (SELECT * FROM {q(names["deg"])}
                               WHERE deg <= {int(self.max_degree)})
                    SELECT a.record_id AS l, b.record_id AS r,
                           {exact_sum("1 / ln(1 + greatest(a.deg, b.deg))")} AS s
                    FROM x a JOIN x b ON a.ip = b.ip AND a.record_id < b.record_id
                    WHERE a.fs <= b.ls + {window} AND b.fs <= a.ls + {window}
                    GROUP BY ALL""",
            ),
        ]
        domains = "SELECT NULL::BIGINT AS l, NULL::BIGINT AS r, 0.0 AS cos WHERE false"
        if "identifier_domain" in ctx.tables and float(self.domain_weight) > 0:
            steps.append(
                SQLStep(
                    "domain vectors",
                    names["dom"],
                    f"""WITH d AS (SELECT record_id, CAST(domain AS VARCHAR) AS domain,
                                          CAST(days AS DOUBLE) AS tf
                                   FROM {q(ctx.tables["identifier_domain"])}
                                   WHERE record_id IN (SELECT record_id FROM {q(names["deg"])})),
                             idf AS (SELECT domain, ln((SELECT count(DISTINCT record_id) FROM d)
                                                       / count(*)) AS idf
                                     FROM d GROUP BY domain),
                             v AS (SELECT d.record_id, d.domain, d.tf * idf.idf AS w
                                   FROM d JOIN idf USING (domain) WHERE idf.idf > 0)
                        SELECT record_id, domain,
                               w / sqrt({exact_sum("w * w", "PARTITION BY record_id")}) AS w
                        FROM v""",
                )
            )
            domains = f"""SELECT p.l, p.r, {exact_sum("a.w * b.w")} AS cos FROM {q(names["cooc"])} p
                          JOIN {q(names["dom"])} a ON a.record_id = p.l
                          JOIN {q(names["dom"])} b ON b.record_id = p.r AND b.domain = a.domain
                          GROUP BY p.l, p.r"""
        return [
            *steps,
            SQLStep(
                "pair scores",
                names["pairs"],
                f"""WITH dom AS ({domains})
                    SELECT c.l AS record_id_l, c.r AS record_id_r,
                           c.s + {float(self.domain_weight)!r} * coalesce(dom.cos, 0) AS score
                    FROM {q(names["cooc"])} c LEFT JOIN dom ON dom.l = c.l AND dom.r = c.r""",
            ),
            SQLStep(
                "top-1 links",
                names["links"],
                f"""WITH both_sides AS (
                        SELECT record_id_l AS x, record_id_r AS y, score FROM {q(names["pairs"])}
                        UNION ALL
                        SELECT record_id_r, record_id_l, score FROM {q(names["pairs"])})
                    SELECT x AS a, arg_max(y, (score, -y)) AS b FROM both_sides GROUP BY x""",
            ),
        ]

    def match(self, ctx: MatchContext) -> MatchResult:
        """Link each identifier to its best co-occurring partner; cluster the links."""
        t0 = time.perf_counter()
        ctx.require_tables("identifier_ip", "ip_stats")
        ctx.require_columns("source")
        names = {
            k: ctx.temp_name(f"cooc_{k}")
            for k in ("deg", "cooc", "dom", "pairs", "links", "clusters")
        }
        run_steps(ctx.con, self._steps(ctx, names), matcher=self.name)
        cc = connected_components(ctx.con, f"SELECT a, b FROM {q(names['links'])}", ctx.temp_name)
        execute(
            ctx.con,
            f"""CREATE OR REPLACE TEMP TABLE {q(names["clusters"])} AS
                SELECT r.record_id, coalesce(c.label, r.record_id) AS cluster_id
                FROM {q(ctx.records)} r LEFT JOIN {q(cc.table)} c ON c.node = r.record_id""",
            step=f"{self.name}: clusters",
        )
        drop_tables(ctx.con, names["deg"], names["cooc"], names["dom"], names["links"], cc.table)
        pairs = ctx.con.sql(f"SELECT record_id_l, record_id_r, score FROM {q(names['pairs'])}")
        diag = {"clustering": cc.diagnostics(), "seconds": round(time.perf_counter() - t0, 3)}
        return MatchResult(clusters=names["clusters"], pairs=pairs, diagnostics=diag)
