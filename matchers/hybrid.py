"""Hybrid identity graph: deterministic rules first, probabilistic links for the rest.

What a production identity graph does with both lenses:

1. **Deterministic stage.** :class:`~matchers.cascade.CascadeGuarded` with its rules
   (``customer_no``, ``loyalty_id``, ``account_id``, ``email``, ``phone``, name
   combinations, and the bridges ``cookie_id`` / ``maid`` that logins and orders carry)
   and its guards (group-size cap, junk lists, one ``customer_no`` per cluster, phone
   time windows, cluster size cap). A deterministic cluster holding at least one
   first-party record is *resolved* (an *anchor*).
2. **Probabilistic stage.** :meth:`matchers.anonymous.Anonymous.score_pairs` scores
   candidate pairs of anonymous identifiers (cookies, ad ids). Each pair is lifted to
   the deterministic clusters of its two records (only the pairs that the anonymous
   matcher would make edges: posterior at least ``threshold``, or among an
   identifier's ``max_links`` strongest partners;
   :func:`matchers.anonymous.strongest_edges_sql`); pairs inside one cluster and pairs
   between two resolved clusters are dropped (the deterministic lens decides between
   customers), so probabilistic edges only attach identifiers that the deterministic
   edges left unresolved - to each other or to one customer.
3. **One clustering** (:func:`bench.api.capped_components`, built on
   :mod:`bench.sql.graph`) over the lifted edges with guards: a final cluster holds at
   most ``max_anchors`` resolved deterministic clusters (the unique-identifier
   constraint: an anonymous chain must not fuse two customers) and at most
   ``max_cluster_size`` records; a violating component is re-clustered on its stronger
   edges until it complies. Because the probabilistic edges are already each
   identifier's strongest few (not every pair above one global threshold), the guard
   rarely has to raise the threshold, and keeps most edges when it does.

Emitted pairs are the probabilistic record pairs (the deterministic links are not
scored pairs), so a threshold sweep over them only moves the probabilistic stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    UnsupportedInput,
    capped_components,
    execute,
    literal,
    materialise,
    quote_ident,
)
from matchers.anonymous import Anonymous, strongest_edges_sql
from matchers.cascade import CascadeGuarded
from matchers.sql_steps import drop_tables

if TYPE_CHECKING:
    import duckdb

__all__ = ["Hybrid"]

log = logging.getLogger(__name__)

q = quote_ident


class Hybrid(BaseMatcher):
    """Deterministic cascade + probabilistic identifier links, one guarded clustering.

    Parameters
    ----------
    threshold
        Posterior match probability at or above which a probabilistic pair is always a
        link (each identifier's ``max_links`` strongest pairs are links too).
    sources
        Record sources that are anonymous identifiers; ``None``: ``cookie``, ``maid``.
    max_cluster_size
        Cap on final cluster size (records).
    max_anchors
        Most resolved deterministic clusters (holding a first-party record) one final
        cluster may join.
    deterministic_max_cluster_size
        The cascade's own cluster cap (:class:`~matchers.cascade.CascadeGuarded`).
    k1, k2, include_cellular, max_gap_days, chain_gap_days, max_candidates, em_iterations, em_min_pairs, max_links, device_bonus
        Passed to :class:`~matchers.anonymous.Anonymous` for the probabilistic scoring.
    """

    name: ClassVar[str] = "hybrid"
    version: ClassVar[str] = "2"
    lens: ClassVar[str] = "hybrid"
    tags: ClassVar[frozenset[str]] = frozenset({"pii", "events", "emits_pairs"})

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        sources: Sequence[str] | None = None,
        max_cluster_size: int | None = 1000,
        max_anchors: int | None = 1,
        deterministic_max_cluster_size: int | None = 200,
        k1: int = 500,
        k2: int = 500,
        include_cellular: bool = False,
        max_gap_days: float = 30.0,
        chain_gap_days: float = 14.0,
        max_candidates: int = 500,
        em_iterations: int = 0,
        em_min_pairs: int = 200,
        max_links: int | None = 1,
        device_bonus: float = 0.3,
    ) -> None:
        self.threshold = threshold
        self.sources = sources
        self.max_cluster_size = max_cluster_size
        self.max_anchors = max_anchors
        self.deterministic_max_cluster_size = deterministic_max_cluster_size
        self.k1 = k1
        self.k2 = k2
        self.include_cellular = include_cellular
        self.max_gap_days = max_gap_days
        self.chain_gap_days = chain_gap_days
        self.max_candidates = max_candidates
        self.em_iterations = em_iterations
        self.em_min_pairs = em_min_pairs
        self.max_links = max_links
        self.device_bonus = device_bonus

    def _anonymous(self) -> Anonymous:
        # Every parameter of Anonymous is also a parameter of Hybrid, under the same name.
        return Anonymous(**{name: getattr(self, name) for name in Anonymous.param_names()})

    def match(self, ctx: MatchContext) -> MatchResult:
        """Deterministic clusters, then probabilistic links among unresolved identifiers."""
        t0 = time.perf_counter()
        diag: dict[str, Any] = {}
        anon = self._anonymous()
        if "source" not in set(ctx.columns()):
            msg = f"{self.name}: records lack column source"
            raise UnsupportedInput(msg)
        det = self._deterministic_clusters(ctx, diag)
        nodes = self._cluster_nodes(ctx, det, anon._sources())
        if all(t in ctx.tables for t in ("identifier_ip", "ip_stats")):
            labels, pairs_rel = self._probabilistic_labels(ctx, anon, det, nodes, diag)
        else:
            diag["probabilistic"] = {"skipped": "no identifier_ip/ip_stats tables"}
            labels, pairs_rel = None, None
        clusters = self._final_clusters(ctx, det, labels)
        drop_tables(ctx.con, det, nodes, labels)
        diag["seconds"] = round(time.perf_counter() - t0, 3)
        return MatchResult(clusters=clusters, pairs=pairs_rel, diagnostics=diag)

    def _deterministic_clusters(self, ctx: MatchContext, diag: dict[str, Any]) -> str:
        """Stage 1: ``(record_id, label)`` of the guarded cascade (singletons without one).

        Materialised now: the cascade's relation is lazy and reads temp tables that the
        clustering of stage 3 would overwrite.
        """
        con = ctx.con
        det = ctx.temp_name("hy_det")
        try:
            res = CascadeGuarded(max_cluster_size=self.deterministic_max_cluster_size).match(ctx)
            det_rows = materialise(con, res.clusters, step=f"{self.name}: deterministic")
            con.register(det + "_arrow", det_rows)
            try:
                execute(
                    con,
                    f"CREATE OR REPLACE TEMP TABLE {q(det)} AS SELECT record_id, "
                    f"CAST(cluster_id AS BIGINT) AS label FROM {q(det + '_arrow')}",
                )
            finally:
                con.unregister(det + "_arrow")
            diag["deterministic"] = {
                k: v for k, v in res.diagnostics.items() if k in ("mode", "rules", "capped_records")
            }
        except UnsupportedInput as exc:
            log.info("%s: no deterministic stage (%s)", self.name, exc)
            diag["deterministic"] = {"skipped": str(exc)}
            execute(
                con,
                f"CREATE OR REPLACE TEMP TABLE {q(det)} AS "
                f"SELECT record_id, record_id AS label FROM {q(ctx.records)}",
            )
        return det

    def _cluster_nodes(self, ctx: MatchContext, det: str, sources: Sequence[str]) -> str:
        """Deterministic clusters as graph nodes: size, and whether they are resolved."""
        nodes = ctx.temp_name("hy_nodes")
        anonymous = ", ".join(literal(s) for s in sources)
        execute(
            ctx.con,
            f"""CREATE OR REPLACE TEMP TABLE {q(nodes)} AS
                SELECT d.label AS node, count(*) AS weight,
                       max(CASE WHEN r.source IN ({anonymous}) THEN 0 ELSE 1 END) AS anchor
                FROM {q(det)} d JOIN {q(ctx.records)} r USING (record_id) GROUP BY d.label""",
            step=f"{self.name}: deterministic clusters",
        )
        return nodes

    def _probabilistic_labels(
        self,
        ctx: MatchContext,
        anon: Anonymous,
        det: str,
        nodes: str,
        diag: dict[str, Any],
    ) -> tuple[str, duckdb.DuckDBPyRelation]:
        """Stages 2 and 3: scored pairs lifted to the clusters, one guarded clustering.

        Returns the ``(node, label)`` table of the capped components and the relation of
        the scored record pairs.
        """
        con = ctx.con
        pairs, diag["probabilistic"] = anon.score_pairs(ctx)
        edges = ctx.temp_name("hy_edges")
        chosen = (
            "SELECT a AS record_id_l, b AS record_id_r, score FROM ("
            + strongest_edges_sql(
                pairs,
                threshold=float(self.threshold),
                links=self.max_links,
                device_bonus=float(self.device_bonus),
            )
            + ")"
        )
        execute(
            con,
            f"""CREATE OR REPLACE TEMP TABLE {q(edges)} AS
                SELECT least(dl.label, dr.label) AS a, greatest(dl.label, dr.label) AS b,
                       max(p.score) AS score
                FROM ({chosen}) p
                JOIN {q(det)} dl ON dl.record_id = p.record_id_l
                JOIN {q(det)} dr ON dr.record_id = p.record_id_r
                JOIN {q(nodes)} nl ON nl.node = dl.label
                JOIN {q(nodes)} nr ON nr.node = dr.label
                WHERE dl.label <> dr.label AND (nl.anchor = 0 OR nr.anchor = 0)
                GROUP BY ALL""",
            step=f"{self.name}: lifted edges",
        )
        cc = capped_components(
            con,
            edges,
            ctx.temp_name,
            threshold=0.0,  # the record edges were chosen above; posteriors are >= 0
            max_size=self.max_cluster_size,
            nodes=nodes,
            max_anchors=self.max_anchors,
        )
        diag["clustering"] = cc.diagnostics()
        drop_tables(con, edges)
        return cc.table, con.sql(f"SELECT record_id_l, record_id_r, score FROM {q(pairs)}")

    def _final_clusters(self, ctx: MatchContext, det: str, labels: str | None) -> str:
        """Each record's label: the capped component of its deterministic cluster."""
        clusters = ctx.temp_name("hy_clusters")
        join = "" if labels is None else f"LEFT JOIN {q(labels)} l ON l.node = d.label"
        label = "d.label" if labels is None else "coalesce(l.label, d.label)"
        execute(
            ctx.con,
            f"""CREATE OR REPLACE TEMP TABLE {q(clusters)} AS
                SELECT d.record_id, {label} AS cluster_id FROM {q(det)} d {join}""",
            step=f"{self.name}: clusters",
        )
        return clusters
