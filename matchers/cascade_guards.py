"""The cascade's guards that need the rules run one at a time: unique keys, cluster cap.

:func:`sequential_labels` applies the rules in order on the clusters built so far. With
``unique_keys`` it refuses (1) a key group whose clusters carry two different values of
a unique key and (2) a component that would still join two values through a chain of
groups; earlier (stronger) rules win. With a ``max_cluster_size`` it keeps the state
after each rule, and :func:`cap_clusters` gives each record of an oversized final
cluster the cluster of the last stage at which that cluster fitted the cap, counted in
*profiles* (records joined by rules free of shareable keys count once). See
:mod:`matchers.cascade` for the guards' meaning.

All state tables are ``(node, label)`` rows for the records whose label is not their
own id.
"""

from __future__ import annotations

from typing import Any

from bench.api import MatchContext, connected_components, execute, query_one, quote_ident
from matchers.cascade_rules import Rule, edges_sql
from matchers.sql_steps import drop_tables

__all__ = ["cap_clusters", "sequential_labels"]

q = quote_ident


def _count(ctx: MatchContext, sql: str) -> int:
    return int(query_one(ctx.engine, sql)["n"])


def _conflict_sql(uniq: list[str]) -> str:
    """HAVING condition: a group of cluster values holds two values of a unique key."""
    return " OR ".join(f"count(DISTINCT v.{q(c)}) > 1" for c in uniq)


# ----------------------------------------------------------------------------- unique keys
def _unique_values(ctx: MatchContext, keys: str, uniq: list[str]) -> str:
    """``(record_id, <unique keys>)`` of the records holding any unique key value."""
    uvals = ctx.temp_name("unique_values")
    if uniq:
        cols = ", ".join(q(c) for c in uniq)
        anyv = " OR ".join(f"{q(c)} IS NOT NULL" for c in uniq)
        execute(
            ctx.engine,
            f"CREATE OR REPLACE TEMP TABLE {q(uvals)} AS SELECT record_id, {cols} "
            f"FROM {q(keys)} WHERE {anyv}",
        )
    return uvals


def _cluster_edges(ctx: MatchContext, keys: str, rule: Rule, state: str, step: str) -> str:
    """The rule's edges between current clusters; ``g`` (the group's min record) names the group."""
    edges = ctx.temp_name("rule_edges")
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(edges)} AS
            SELECT e.b AS g, coalesce(sa.label, e.a) AS ca, coalesce(sb.label, e.b) AS cb
            FROM ({edges_sql(q(keys), rule)}) e
            LEFT JOIN {q(state)} sa ON sa.node = e.a
            LEFT JOIN {q(state)} sb ON sb.node = e.b
            WHERE e.a <> e.b""",
        step=f"{step} edges",
    )
    return edges


def _cluster_values(ctx: MatchContext, uvals: str, state: str, uniq: list[str]) -> str:
    """``(c, <unique keys>)``: a unique key value of each current cluster."""
    cvals = ctx.temp_name("cluster_values")
    maxes = ", ".join(f"max({q(c)}) AS {q(c)}" for c in uniq)
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(cvals)} AS
            SELECT coalesce(s.label, u.record_id) AS c, {maxes}
            FROM {q(uvals)} u LEFT JOIN {q(state)} s ON s.node = u.record_id
            GROUP BY ALL""",
    )
    return cvals


def _refuse_groups(
    ctx: MatchContext, edges: str, cvals: str, uniq: list[str], info: dict[str, Any], step: str
) -> str:
    """Guard (1): drop the key groups joining two values; return the accepted edges query."""
    ok = edges + "_ok"
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(ok)} AS
            WITH members AS (SELECT g, ca AS c FROM {q(edges)}
                             UNION SELECT g, cb FROM {q(edges)}),
                 bad AS (SELECT m.g FROM members m JOIN {q(cvals)} v ON v.c = m.c
                         GROUP BY m.g HAVING {_conflict_sql(uniq)})
            SELECT ca AS a, cb AS b FROM {q(edges)}
            WHERE ca <> cb AND g NOT IN (SELECT g FROM bad)""",
        step=f"{step} group refusals",
    )
    info["groups_refused"] = _count(
        ctx,
        f"SELECT count(DISTINCT g) AS n FROM {q(edges)} "
        f"WHERE (ca, cb) NOT IN (SELECT (a, b) FROM {q(ok)}) "
        "AND ca <> cb",
    )
    return f"SELECT a, b FROM {q(ok)}"


def _refuse_components(
    ctx: MatchContext, components: str, cvals: str, uniq: list[str], info: dict[str, Any], step: str
) -> str:
    """Guard (2): drop the components joining two values; return the accepted table."""
    accepted = ctx.temp_name("accepted")
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(accepted)} AS
            WITH members AS (SELECT node AS c, label FROM {q(components)}
                             UNION SELECT label, label FROM {q(components)}),
                 bad AS (SELECT m.label FROM members m JOIN {q(cvals)} v ON v.c = m.c
                         GROUP BY m.label HAVING {_conflict_sql(uniq)})
            SELECT node, label FROM {q(components)}
            WHERE label NOT IN (SELECT label FROM bad)""",
        step=f"{step} component refusals",
    )
    info["components_refused"] = _count(
        ctx,
        f"SELECT count(DISTINCT label) AS n FROM {q(components)} "
        f"WHERE node NOT IN (SELECT node FROM {q(accepted)})",
    )
    return accepted


def _apply_rule(
    ctx: MatchContext,
    keys: str,
    rule: Rule,
    index: int,
    state: str,
    uvals: str,
    uniq: list[str],
    matcher: str,
) -> tuple[str, dict[str, Any]]:
    """One rule on the clusters so far: the next state table and the rule's diagnostics."""
    step = f"{matcher}: rule {rule.label}"
    info: dict[str, Any] = {"rule": rule.label}
    edges = _cluster_edges(ctx, keys, rule, state, step)
    cvals = None
    if uniq:
        cvals = _cluster_values(ctx, uvals, state, uniq)
        edge_src = _refuse_groups(ctx, edges, cvals, uniq, info, step)
    else:
        edge_src = f"SELECT ca AS a, cb AS b FROM {q(edges)}"
    cc = connected_components(ctx.engine, edge_src, ctx.temp_name)
    info["components"] = cc.diagnostics()
    accepted = cc.table
    if cvals is not None:
        accepted = _refuse_components(ctx, cc.table, cvals, uniq, info, step)
    nxt = ctx.temp_name(f"state_{index}")
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(nxt)} AS
            SELECT s.node, coalesce(t.label, s.label) AS label
            FROM {q(state)} s LEFT JOIN {q(accepted)} t ON t.node = s.label
            UNION ALL SELECT node, label FROM {q(accepted)}""",
        step=f"{step} merge",
    )
    drop_tables(ctx.engine, *{edges, edges + "_ok", cvals, accepted, cc.table})
    return nxt, info


def sequential_labels(
    ctx: MatchContext,
    keys: str,
    rules: list[Rule],
    uniq: list[str],
    diag: dict[str, Any],
    *,
    max_cluster_size: int | None,
    matcher: str,
) -> str:
    """Apply rules one at a time with unique-key refusals; return the labels table.

    Parameters
    ----------
    keys
        Table of the normalised keys (:func:`matchers.cascade_keys.keys_sql`).
    rules
        The rules, strongest first.
    uniq
        Unique key columns present in the records (possibly none).
    diag
        Diagnostics, filled in (``mode``, ``per_rule``, ``capped_records``).
    max_cluster_size
        Cluster cap in profiles (``None``: no cap, no stages kept).
    matcher
        The matcher's name, for the step names.
    """
    diag["mode"] = "sequential"
    state = ctx.temp_name("state_0")  # node -> label, only for node <> label
    execute(ctx.engine, f"CREATE OR REPLACE TEMP TABLE {q(state)} (node BIGINT, label BIGINT)")
    stages: list[str] = []
    per_rule: list[dict[str, Any]] = []
    uvals = _unique_values(ctx, keys, uniq)
    for i, rule in enumerate(rules, start=1):
        nxt, info = _apply_rule(ctx, keys, rule, i, state, uvals, uniq, matcher)
        if max_cluster_size is None or i == 1:
            drop_tables(ctx.engine, state)
        else:
            stages.append(state)
        state = nxt
        per_rule.append(info)
    diag["per_rule"] = per_rule
    drop_tables(ctx.engine, uvals)
    if max_cluster_size is not None:
        state = cap_clusters(
            ctx, keys, rules, state, stages, diag, cap=max_cluster_size, matcher=matcher
        )
    drop_tables(ctx.engine, *stages)
    return state


# ----------------------------------------------------------------------------- cluster cap
def _profiles(ctx: MatchContext, keys: str, rules: list[Rule]) -> str | None:
    """Profiles: components over the rules free of shareable keys (table or ``None``).

    Records joined by authenticated ids alone (an account and its logins, a cookie
    and the logins and orders it carries) form one profile; ``max_cluster_size``
    counts profiles, so a customer's long event history is not taken for an
    over-merge.
    """
    trusted = [r for r in rules if not r.shareable]
    if not trusted:
        return None
    edges = " UNION ALL ".join(edges_sql(q(keys), r) for r in trusted)
    return connected_components(ctx.engine, edges, ctx.temp_name).table


def _sizes_sql(stage: str, profiles: str | None) -> str:
    """``(label, n)``: profiles per cluster of a stage (records without a profile: 1)."""
    members = f"SELECT node, label FROM {q(stage)} UNION SELECT label, label FROM {q(stage)}"
    if profiles is None:
        return f"SELECT label, count(DISTINCT node) AS n FROM ({members}) GROUP BY label"
    return f"""SELECT m.label, count(DISTINCT coalesce(p.label, m.node)) AS n
               FROM ({members}) m LEFT JOIN {q(profiles)} p ON p.node = m.node
               GROUP BY m.label"""


def _fall_back(
    ctx: MatchContext, pending: str, stages: list[str], profiles: str | None, cap: int, matcher: str
) -> str:
    """``(node, label)`` of the pending records from the last stage whose cluster fits.

    ``stages[j]`` is the state after rule j+1 (the first rule's stage is not kept: a
    cluster too big after the strongest rule falls back to singletons). Records placed
    leave ``pending``.
    """
    over = ctx.temp_name("cap_override")
    execute(ctx.engine, f"CREATE OR REPLACE TEMP TABLE {q(over)} (node BIGINT, label BIGINT)")
    for stage in reversed(stages):
        execute(
            ctx.engine,
            f"""INSERT INTO {q(over)}
                WITH sizes AS ({_sizes_sql(stage, profiles)})
                SELECT p.record_id, coalesce(s.label, p.record_id)
                FROM {q(pending)} p LEFT JOIN {q(stage)} s ON s.node = p.record_id
                LEFT JOIN sizes z ON z.label = coalesce(s.label, p.record_id)
                WHERE coalesce(z.n, 1) <= {cap}""",
            step=f"{matcher}: cap fallback",
        )
        execute(
            ctx.engine,
            f"DELETE FROM {q(pending)} WHERE record_id IN (SELECT node FROM {q(over)})",
        )
    return over


def cap_clusters(
    ctx: MatchContext,
    keys: str,
    rules: list[Rule],
    state: str,
    stages: list[str],
    diag: dict[str, Any],
    *,
    cap: int,
    matcher: str,
) -> str:
    """Break clusters above ``cap`` profiles by falling back to earlier stages."""
    cap = int(cap)
    profiles = _profiles(ctx, keys, rules)
    pending = ctx.temp_name("cap_pending")
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(pending)} AS
            WITH big AS (SELECT label FROM ({_sizes_sql(state, profiles)})
                         WHERE n > {cap})
            SELECT node AS record_id FROM {q(state)} WHERE label IN (SELECT label FROM big)
            UNION SELECT label FROM big""",
        step=f"{matcher}: cap",
    )
    n_big = _count(ctx, f"SELECT count(*) AS n FROM {q(pending)}")
    diag["capped_records"] = n_big
    if not n_big:
        drop_tables(ctx.engine, pending, profiles)
        return state
    over = _fall_back(ctx, pending, stages, profiles, cap, matcher)
    out = ctx.temp_name("capped")
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP TABLE {q(out)} AS
            SELECT node, label FROM {q(state)}
            WHERE node NOT IN (SELECT record_id FROM {q(pending)})
              AND node NOT IN (SELECT node FROM {q(over)})
            UNION ALL SELECT node, label FROM {q(over)} WHERE node <> label""",
        step=f"{matcher}: cap apply",
    )
    drop_tables(ctx.engine, pending, over, state, profiles)
    return out
