"""Scale guards of Splink's prediction and clustering: a pair budget and a cluster-size cap.

**Pair budget.**
Before predicting, Splink's blocking analysis (``count_comparisons_from_blocking_rules``)
counts the pairs each prediction rule adds, exactly on small inputs and from a
deterministic record sample on large ones (:func:`sample_proportion`); the rules are
kept in order while the running total stays within ``max_comparisons``, and a rule that
would exceed it is dropped with a logged warning (:func:`within_budget`). The same pair
counting serves the prior estimate of the training, so its two Splink quirks are
handled here once: the ``result_df`` relation it registers (:func:`result_df_guard`)
and its warning about few sampled pairs (:func:`quiet_sampled_counts`).

**Cluster-size guard.** Connected components of the pairs at the threshold let one
weak link per step chain records of different people: a handful of over-confident
links on a shared card token or a common name and date of birth joined 13,326 records
of one city into one "person" at 3M records. :func:`guarded_clusters` clusters with
:func:`bench.api.capped_components` instead: a component of more than
``max_profiles`` profiles is re-clustered on its own edges at a raised threshold (the
median score inside it, step by step) until its parts fit, and the diagnostics say so
(``cluster_guard``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from splink.blocking_analysis import count_comparisons_from_blocking_rules

from bench.api import MatchContext, capped_components, execute, query, quote_ident

__all__ = [
    "count_comparisons",
    "guarded_clusters",
    "quiet_sampled_counts",
    "result_df_guard",
    "sample_proportion",
    "within_budget",
]

log = logging.getLogger(__name__)

#: Records sampled on each side of a blocking join when counting its pairs on large
#: inputs (Splink counts real pairs, so exact counts of an exploding rule are as costly
#: as the explosion itself).
_COUNT_SAMPLE_RECORDS = 20_000


def sample_proportion(n: int) -> float:
    """Record sampling proportion for Splink's pair counts: exact up to 20k records."""
    return min(1.0, max(0.01, _COUNT_SAMPLE_RECORDS / max(n, 1)))


@contextlib.contextmanager
def result_df_guard(ctx: MatchContext) -> Iterator[bool]:
    """Let a Splink blocking analysis register its ``result_df`` relation, then remove it.

    Splink's pair counting (used by the prior estimator and the blocking analysis)
    registers a relation named ``result_df`` in the connection, outside its
    ``__splink__`` namespace. Yields whether that name is free (run the analysis only
    then) and unregisters it afterwards, so the connection holds nothing unprefixed of
    ours. Off DuckDB, Splink registers it in a DuckDB connection of its own, away from
    the run's tables: the name is always free there.
    """
    if ctx.engine_kind != "duckdb":
        yield True
        return
    taken = (
        query(
            ctx.con,
            "SELECT count(*) AS n FROM duckdb_views() WHERE view_name = 'result_df' "
            "UNION ALL SELECT count(*) FROM duckdb_tables() WHERE table_name = 'result_df'",
            step="check result_df",
        )
        .column("n")
        .to_pylist()
    )
    if any(taken):
        yield False
        return
    try:
        yield True
    finally:
        ctx.con.unregister("result_df")


@contextlib.contextmanager
def quiet_sampled_counts() -> Iterator[None]:
    """Silence Splink's warning that a sampled pair count rests on few sampled pairs.

    Rules that admit few pairs have few sampled pairs; a rough estimate of a small
    count does not matter against a budget of millions (or for the prior).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The sampled blocking analysis", category=UserWarning
        )
        yield


def count_comparisons(
    ctx: MatchContext,
    records: Any,
    rules: list[Any],
    settings: Mapping[str, Any],
    proportion: float,
) -> list[dict[str, Any]]:
    """Splink's marginal and cumulative pair counts of ``rules``, in order."""
    with result_df_guard(ctx) as free:
        if not free:
            msg = "splink: a table named result_df exists; cannot count blocked pairs"
            raise ValueError(msg)
        with quiet_sampled_counts():
            counts = count_comparisons_from_blocking_rules(
                records,
                blocking_rules=rules,
                link_type=settings.get("link_type", "dedupe_only"),
                unique_id_column_name=settings.get("unique_id_column_name", "record_id"),
                source_dataset_column_name=settings.get("source_dataset_column_name"),
                record_sample_proportion=proportion,
            )
    return [dict(c) for c in counts]


def _rule_count(count: Mapping[str, Any]) -> dict[str, Any]:
    """One rule's counts as the diagnostics show them."""
    return {
        "blocking_rule": count["blocking_rule"],
        "marginal_comparisons": count["marginal_comparison_count"],
        "cumulative_comparisons": count["cumulative_comparison_count"],
    }


def _drop_first_over(
    rules: list[Any], counts: list[dict[str, Any]], max_comparisons: int
) -> dict[str, Any] | None:
    """Remove (and log) the first rule whose running total exceeds the budget, if any."""
    over = next(
        (i for i, c in enumerate(counts) if c["cumulative_comparison_count"] > max_comparisons),
        None,
    )
    if over is None:
        return None
    count = counts[over]
    rules.pop(over)
    log.warning(
        "splink: dropping blocking rule %s: it adds ~%s pairs, bringing the total "
        "to ~%s, over max_comparisons=%s",
        count["blocking_rule"],
        f"{count['marginal_comparison_count']:,}",
        f"{count['cumulative_comparison_count']:,}",
        f"{max_comparisons:,}",
    )
    return _rule_count(count)


def within_budget(
    ctx: MatchContext,
    records: Any,
    settings: Mapping[str, Any],
    n: int,
    max_comparisons: int | None,
) -> tuple[list[Any], dict[str, Any]]:
    """Keep the prediction rules, in order, whose pairs fit ``max_comparisons``.

    Parameters
    ----------
    records
        The records as registered with Splink (``DuckDBAPI.register``).
    settings
        The settings whose ``blocking_rules_to_generate_predictions`` are checked.
    n
        Number of records.
    max_comparisons
        The budget; ``None`` keeps every rule uncounted.

    Returns
    -------
    tuple
        The rules kept and the diagnostics (``blocking_budget``).
    """
    rules = list(settings.get("blocking_rules_to_generate_predictions") or [])
    info: dict[str, Any] = {"max_comparisons": max_comparisons, "counted": False}
    all_pairs = n * (n - 1) // 2
    if max_comparisons is None or all_pairs <= max_comparisons:
        info["reason"] = "no budget" if max_comparisons is None else "all pairs fit"
        return rules, info
    if not rules:
        msg = (
            f"splink: no blocking rules, so prediction would score all {all_pairs:,} "
            f"pairs of {n:,} records, more than max_comparisons={max_comparisons:,}; "
            "add blocking_rules_to_generate_predictions to the settings"
        )
        raise ValueError(msg)
    proportion = sample_proportion(n)
    dropped: list[dict[str, Any]] = []
    while True:
        counts = count_comparisons(ctx, records, rules, settings, proportion)
        rejected = _drop_first_over(rules, counts, max_comparisons)
        if rejected is None:
            break
        dropped.append(rejected)
        if not rules:
            msg = (
                f"splink: every blocking rule exceeds max_comparisons="
                f"{max_comparisons:,} on {n:,} records (first rule: ~"
                f"{counts[0]['marginal_comparison_count']:,} pairs); use tighter rules "
                "or raise the budget"
            )
            raise ValueError(msg)
    info.update(
        counted=True,
        record_sample_proportion=proportion,
        estimated_comparisons=counts[-1]["cumulative_comparison_count"] if counts else 0,
        rules=[_rule_count(c) for c in counts],
        dropped=dropped,
    )
    return rules, info


def guarded_clusters(
    ctx: MatchContext, predictions: str, threshold: float, max_profiles: int | None
) -> tuple[str, dict[str, Any]]:
    """Clusters of Splink's scored pairs at ``threshold``, no cluster over ``max_profiles``.

    Parameters
    ----------
    ctx
        The context Splink ran on (``ctx.records``: one record per profile).
    predictions
        Table of Splink's predictions (``record_id_l``, ``record_id_r``,
        ``match_probability``), in the run's engine.
    threshold
        Match probability at or above which a pair links.
    max_profiles
        Cap on a cluster's profiles; ``None`` clusters without one (plain connected
        components).

    Returns
    -------
    tuple
        SQL of ``(record_id, cluster_id)`` for every profile (a profile left alone is
        its own cluster) and the guard's diagnostics: the cap, the thresholds used
        (more than one when a component was re-clustered), ``guard_fired`` and the
        profiles left single because no raised threshold split their component.
    """
    edges = ctx.temp_name("splink_edges")
    execute(
        ctx.engine,
        f"""CREATE OR REPLACE TEMP VIEW {quote_ident(edges)} AS
            SELECT record_id_l AS a, record_id_r AS b, match_probability AS score
            FROM {predictions}""",
        step="splink: cluster edges",
    )
    cc = capped_components(
        ctx.engine, edges, ctx.temp_name, threshold=threshold, max_size=max_profiles
    )
    info = {
        "max_cluster_profiles": max_profiles,
        "guard_fired": len(cc.thresholds) > 1 or cc.dropped_nodes > 0,
        **cc.diagnostics(),
    }
    if info["guard_fired"]:
        log.warning(
            "splink: components over %s profiles re-clustered at thresholds %s",
            max_profiles,
            info["thresholds"][1:],
        )
    sql = f"""
        SELECT r.record_id, coalesce(c.label, r.record_id) AS cluster_id
        FROM {quote_ident(ctx.records)} AS r
        LEFT JOIN {quote_ident(cc.table)} AS c ON c.node = r.record_id
    """
    return sql, info
