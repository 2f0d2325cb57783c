"""Deterministic rule cascade with transitive closure: the CDP lens.

A rule is a set of normalised key columns (``["email"]``, ``["given_name", "family_name",
"dob"]``). Records whose keys are all present and equal under a rule are linked; the
clusters are the connected components over the links of every rule. On DuckDB they are
closed in memory (:func:`~bench.api.linked_clusters`): a rule hands over each record's
key (one composite key for several columns), grouped there by its bytes; only a rule
with a time window hands over *star* edges. Elsewhere every rule's star edges are
closed in SQL (:func:`~bench.api.record_clusters`). A key group of k records
contributes k-1 star edges (every record to the group's smallest record id), not
k(k-1)/2 pairs.

Guards (each off by default, each measurable on its own; :class:`CascadeGuarded` turns
them all on):

``max_group_size`` / ``group_size_keys``
    An identifier value shared by more than N records links nothing (store phones,
    junk addresses that escaped the lists, a common name + birthday). The cap applies
    only to rules holding one of ``group_size_keys``: the identifiers that get *shared*
    between people (by default e-mail, phone and the name/postcode/dob combinations,
    :data:`GROUP_SIZE_KEYS`). Authenticated first-party ids (``customer_no``,
    ``loyalty_id``, ``account_id``) and the anonymous ids those events carry
    (``cookie_id``, ``maid``) are not capped by default: a hundred logins or orders on
    one account are one customer's normal history, not a shared value, and capping them
    cuts exactly the links an identity graph is built from.
``exclude_junk`` / ``exclude_values``
    Built-in placeholder lists (:func:`matchers.normalise.junk_sql`) and user-given values
    per column (normalised with the column's own normaliser before comparison).
``time_windows``
    ``{column: days}``: evidence of a time-bound identifier (a phone that is recycled to a
    new owner after >= 45 days) links only records close in time. A key group's records
    are sorted by ``ts`` and cut wherever two consecutive records are more than
    ``days`` apart; each episode links on its own. Records without ``ts`` do not link
    through that key (no time, no evidence).
``unique_keys``
    Columns of which a cluster may hold at most one distinct value (``customer_no``).
    Rules then run one at a time, in order, on the clusters built so far: (1) a key
    group whose clusters carry two different values of a unique key links nothing;
    (2) the remaining links are closed into components, and a component that would
    still join two different values (through a chain of groups) is refused as a whole -
    its clusters stay as they were before the rule. Earlier (stronger) rules win.
``max_cluster_size``
    A final cluster above the cap is broken up by falling back to the *stronger* rules:
    each of its records takes its cluster from the last rule stage at which that
    cluster was within the cap (stages nest, so the result is a partition); a record
    whose cluster exceeds the cap already after the first rule stays alone. Size is
    counted in *profiles*, not records: records joined by the rules free of
    ``group_size_keys`` (an account with its logins and orders, a cookie with the
    logins it carries) count once, so one customer's event history (1,000+ logins on
    identity-graph) is not mistaken for an over-merge; only chains through shareable
    identifiers grow a cluster towards the cap.

Rules whose columns are missing from the records are skipped (listed in the
diagnostics); if no rule can run the matcher raises :class:`~bench.api.UnsupportedInput`.

This module runs the cascade; the rules and the edges they make are in
:mod:`matchers.cascade_rules`, the normalised keys in :mod:`matchers.cascade_keys`, and
the guards that run the rules one at a time (``unique_keys``, ``max_cluster_size``) in
:mod:`matchers.cascade_guards`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from bench.api import (
    BaseMatcher,
    EdgeLinks,
    KeyLinks,
    MatchContext,
    MatchResult,
    UnsupportedInput,
    clusters_sql,
    execute,
    linked_clusters,
    load_closure_kernels,
    quote_ident,
    record_clusters,
)
from matchers.cascade_guards import sequential_labels
from matchers.cascade_keys import KeyOptions, keys_sql, make_exclusions
from matchers.cascade_rules import (
    DEFAULT_RULES,
    GROUP_SIZE_KEYS,
    Rule,
    any_rule_present_sql,
    edges_sql,
    make_rule,
    present_sql,
    single_rule_clusters_sql,
)
from matchers.normalise import key_kind, key_query_sql
from matchers.sql_steps import drop_tables

if TYPE_CHECKING:
    import duckdb

__all__ = ["DEFAULT_RULES", "GROUP_SIZE_KEYS", "Cascade", "CascadeGuarded"]

log = logging.getLogger(__name__)

q = quote_ident

load_closure_kernels()  # numba's set-up is a library load, not part of a match


class Cascade(BaseMatcher):
    """Ordered deterministic rules, closed transitively.

    Parameters
    ----------
    rules
        Lists of canonical column names; ``None`` uses :data:`DEFAULT_RULES`.
    email_canonical
        Drop ``+tags`` and Gmail dots when normalising e-mails.
    phone_region
        Default region (ISO 3166 alpha-2) for phones written without a country code.
    phone_method
        ``"sql"`` (rules in SQL, fast) or ``"phonenumbers"`` (the library on distinct
        raw values; exact but ~80k values/s).
    max_group_size
        Ignore identifier values shared by more than this many records, in the rules
        that ``group_size_keys`` selects.
    group_size_keys
        Columns the ``max_group_size`` cap applies to: a rule is capped when it holds
        any of them. ``None``: :data:`GROUP_SIZE_KEYS` (the shareable identifiers, not
        authenticated account ids); list every rule column to cap all rules.
    exclude_junk
        Ignore built-in placeholder e-mails and phones.
    exclude_values
        ``{column: [raw values]}`` never used as evidence.
    unique_keys
        Columns a cluster may hold at most one distinct value of.
    time_windows
        ``{column: days}`` for time-bound identifiers (needs a ``ts`` column).
    max_cluster_size
        Break up clusters of more than this many profiles (records joined by rules free
        of ``group_size_keys`` count once) by falling back to stronger rules.
    """

    name: ClassVar[str] = "cascade"
    version: ClassVar[str] = "2"
    lens: ClassVar[str] = "deterministic"
    tags: ClassVar[frozenset[str]] = frozenset({"pii"})

    def __init__(
        self,
        *,
        rules: Sequence[Sequence[str]] | None = None,
        email_canonical: bool = False,
        phone_region: str = "US",
        phone_method: str = "sql",
        max_group_size: int | None = None,
        group_size_keys: Sequence[str] | None = None,
        exclude_junk: bool = False,
        exclude_values: Mapping[str, Sequence[str]] | None = None,
        unique_keys: Sequence[str] | None = None,
        time_windows: Mapping[str, float] | None = None,
        max_cluster_size: int | None = None,
    ) -> None:
        self.rules = rules
        self.email_canonical = email_canonical
        self.phone_region = phone_region
        self.phone_method = phone_method
        self.max_group_size = max_group_size
        self.group_size_keys = group_size_keys
        self.exclude_junk = exclude_junk
        self.exclude_values = exclude_values
        self.unique_keys = unique_keys
        self.time_windows = time_windows
        self.max_cluster_size = max_cluster_size

    # ------------------------------------------------------------------ helpers
    def _rules(self) -> list[list[str]]:
        rules = DEFAULT_RULES if self.rules is None else self.rules
        out = []
        for rule in rules:
            cols = [rule] if isinstance(rule, str) else list(rule)
            if not cols:
                msg = f"{self.name}: every rule needs at least one column, got {rules!r}"
                raise ValueError(msg)
            out.append(cols)
        return out

    def _check_params(self) -> None:
        if self.phone_method not in ("sql", "phonenumbers"):
            msg = f"{self.name}: phone_method must be 'sql' or 'phonenumbers', got {self.phone_method!r}"
            raise ValueError(msg)
        for label, value in (
            ("max_group_size", self.max_group_size),
            ("max_cluster_size", self.max_cluster_size),
        ):
            if value is not None and (not isinstance(value, int) or value < 1):
                msg = f"{self.name}: {label} must be a positive integer or None, got {value!r}"
                raise ValueError(msg)

    #: What ``None`` means for ``unique_keys`` / ``time_windows`` (presets override).
    default_unique_keys: ClassVar[tuple[str, ...]] = ()
    default_time_windows: ClassVar[Mapping[str, float]] = {}

    def _group_size_keys(self) -> set[str]:
        keys = GROUP_SIZE_KEYS if self.group_size_keys is None else self.group_size_keys
        return {keys} if isinstance(keys, str) else {str(k) for k in keys}

    def _unique_keys(self) -> list[str]:
        keys = self.default_unique_keys if self.unique_keys is None else self.unique_keys
        return [keys] if isinstance(keys, str) else list(keys)

    def _time_windows(self) -> dict[str, float]:
        windows = self.default_time_windows if self.time_windows is None else self.time_windows
        return {str(k): float(v) for k, v in windows.items()}

    def _key_options(self) -> KeyOptions:
        return KeyOptions(
            email_canonical=self.email_canonical,
            phone_region=self.phone_region,
            phone_method=self.phone_method,
            exclude_junk=self.exclude_junk,
            exclude_values=self.exclude_values,
        )

    def _runnable_rules(self, have: set[str]) -> tuple[list[list[str]], list[list[str]]]:
        """The rules whose columns all exist, and the skipped ones; none runnable raises."""
        rules = [r for r in self._rules() if all(c in have for c in r)]
        skipped = [r for r in self._rules() if r not in rules]
        if not rules:
            msg = (
                f"{self.name}: no rule can run: every rule names a missing column "
                f"(rules: {self._rules()}; have: {sorted(have)})"
            )
            raise UnsupportedInput(msg)
        if skipped:
            log.info("%s: skipping rules with missing columns: %s", self.name, skipped)
        return rules, skipped

    def _plan(self, rules: list[list[str]], windows: Mapping[str, float]) -> list[Rule]:
        """The rules with the guards that apply to each (cap, window, shareable)."""
        shareable = self._group_size_keys()
        return [
            make_rule(
                cols,
                shareable_keys=shareable,
                max_group_size=self.max_group_size,
                windows=windows,
            )
            for cols in rules
        ]

    def _applicable_windows(
        self, rules: list[list[str]], have: set[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The time windows the rules use, and those ignored for want of a ``ts`` column.

        Explicit ``time_windows`` on records without ``ts`` are refused; a preset's
        default window is ignored there (nothing to cut on).
        """
        windows = self._time_windows()
        if "ts" in have or not any(c in windows for r in rules for c in r):
            return windows, {}
        if self.time_windows is not None:
            msg = f"{self.name}: time_windows {self.time_windows} need a ts column in the records"
            raise UnsupportedInput(msg)
        return {}, windows

    # ------------------------------------------------------------------ match
    def match(self, ctx: MatchContext) -> MatchResult:
        """Resolve the records by the rule cascade."""
        self._check_params()
        t0 = time.perf_counter()
        have = set(ctx.columns())
        if "record_id" not in have:
            msg = "records lack column record_id"
            raise UnsupportedInput(msg)
        rules, skipped = self._runnable_rules(have)
        uniq = [c for c in self._unique_keys() if c in have]
        windows, ignored_windows = self._applicable_windows(rules, have)
        plan = self._plan(rules, windows)
        columns = list(dict.fromkeys([c for r in rules for c in r] + uniq))
        diag: dict[str, Any] = {
            "rules": rules,
            "rules_skipped": skipped,
            "unique_keys": uniq,
            "time_windows_ignored": ignored_windows,
        }
        options = self._key_options()
        make_exclusions(ctx, columns, options)
        staged = self._runs_in_stages(uniq)
        if staged or len(plan) == 1:  # one keys query for every rule
            with_ts = any(r.window is not None for r in plan)
            keys_query = keys_sql(ctx, columns, options, with_ts=with_ts)
        if not staged and len(plan) == 1:
            rel = self._single_rule(ctx, keys_query, plan[0], diag)
        elif staged:
            labels = self._labels(ctx, keys_query, plan, uniq, diag, t0)
            # A record without every column of some rule links through nothing: it
            # passes straight through instead of through the join with the labels.
            rel = ctx.rows(
                clusters_sql(q(ctx.records), q(labels), any_rule_present_sql(plan)), "clusters"
            )
        else:  # each rule builds its own keys
            rel = self._closure(ctx, plan, options, diag)
        diag["seconds_prepare"] = round(time.perf_counter() - t0, 3)
        return MatchResult(clusters=rel, diagnostics=diag)

    def _runs_in_stages(self, uniq: list[str]) -> bool:
        """Whether the rules must run one at a time (a guard needs the stages)."""
        return bool(uniq) or self.max_cluster_size is not None

    def _single_rule(
        self, ctx: MatchContext, keys_query: str, rule: Rule, diag: dict[str, Any]
    ) -> duckdb.DuckDBPyRelation:
        """One rule without sequential guards: the groups are the clusters (a relation)."""
        diag["mode"] = "single-rule"
        keys = ctx.temp_name("keys_view")
        execute(
            ctx.engine,
            f"CREATE OR REPLACE TEMP VIEW {q(keys)} AS {keys_query}",
            step=f"{self.name}: keys",
        )
        return ctx.rows(single_rule_clusters_sql(q(ctx.records), q(keys), rule), "clusters")

    def _labels(
        self,
        ctx: MatchContext,
        keys_query: str,
        plan: list[Rule],
        uniq: list[str],
        diag: dict[str, Any],
        t0: float,
    ) -> str:
        """``(node, label)`` of the linked records: sequential guards or one closure."""
        keys = ctx.temp_name("keys")
        execute(
            ctx.engine,
            f"CREATE OR REPLACE TEMP TABLE {q(keys)} AS SELECT * FROM ({keys_query}) "
            f"WHERE {any_rule_present_sql(plan)}",
            step=f"{self.name}: keys",
        )
        diag["seconds_keys"] = round(time.perf_counter() - t0, 3)
        labels = sequential_labels(
            ctx,
            keys,
            plan,
            uniq,
            diag,
            max_cluster_size=self.max_cluster_size,
            matcher=self.name,
        )
        drop_tables(ctx.engine, keys)
        return labels

    def _closure(
        self, ctx: MatchContext, plan: list[Rule], options: KeyOptions, diag: dict[str, Any]
    ) -> Any:
        """The clusters of every record: every rule's links, closed at once.

        Each rule normalises its own columns on the records that carry them all (a
        name + birthday rule reads the few records with a birthday, not every record
        with a name), and its keys live only until its links are taken in. On DuckDB
        the closure runs in memory (:func:`~bench.api.linked_clusters`): each rule
        hands over its keys (:meth:`_links`), grouped there by their bytes; elsewhere
        every rule's star edges go to :func:`~bench.api.record_clusters`.
        """
        diag["mode"] = "closure"
        if ctx.engine_kind == "duckdb":
            links = [self._links(ctx, rule, options) for rule in plan]
            closed = linked_clusters(
                ctx.engine, links, q(ctx.records), step=f"{self.name}: closure"
            )
            diag["closure"] = closed.method
            diag["components"] = closed.diagnostics
            return closed.clusters
        t0 = time.perf_counter()
        edges = ctx.temp_name("rule_edges")
        execute(ctx.engine, f"CREATE OR REPLACE TEMP TABLE {q(edges)} (a BIGINT, b BIGINT)")
        for rule in plan:
            execute(
                ctx.engine,
                f"INSERT INTO {q(edges)} {self._star_edges_sql(ctx, rule, options)}",
                step=f"{self.name}: edges {rule.label}",
            )
        diag["seconds_edges"] = round(time.perf_counter() - t0, 3)
        # Star edges from every record to its group's smallest record: a < b by
        # construction, so the components skip their normalising pass.
        try:
            closed = record_clusters(
                ctx.engine,
                f"SELECT a, b FROM {q(edges)}",
                q(ctx.records),
                ctx.temp_name,
                linkable=any_rule_present_sql(plan),
                oriented=True,
                step=f"{self.name}: closure",
            )
        finally:
            drop_tables(ctx.engine, edges)
        diag["closure"] = closed.method
        diag["components"] = closed.diagnostics
        return closed.clusters

    @staticmethod
    def _rule_keys_sql(ctx: MatchContext, rule: Rule, options: KeyOptions) -> str:
        return keys_sql(
            ctx,
            list(rule.columns),
            options,
            with_ts=rule.window is not None,
            where=present_sql(rule.columns),
        )

    def _star_edges_sql(self, ctx: MatchContext, rule: Rule, options: KeyOptions) -> str:
        """``(a, b)`` with ``a < b``: every record of a key group to its smallest record."""
        return (
            f"WITH __keys AS MATERIALIZED ({self._rule_keys_sql(ctx, rule, options)}) "
            f"SELECT b AS a, a AS b FROM ({edges_sql('__keys', rule)}) WHERE b < a"
        )

    def _links(self, ctx: MatchContext, rule: Rule, options: KeyOptions) -> KeyLinks | EdgeLinks:
        """What one rule links, for the in-memory closure.

        A rule without a time window hands over ``(record_id, key)`` (its group cap
        travels with it; :func:`~matchers.normalise.key_query_sql`: the normalised
        column itself, or one composite key for several columns or a date). A rule
        with a time window hands over its star edges (its groups are cut into episodes
        in SQL).
        """
        label = "+".join(rule.columns)
        if rule.window is not None:
            return EdgeLinks(self._star_edges_sql(ctx, rule, options), label=f"edges {label}")
        sql = key_query_sql(
            self._rule_keys_sql(ctx, rule, options),
            [q(c) for c in rule.columns],
            one_text_column=key_kind(rule.columns[0]) != "date",
        )
        return KeyLinks(sql, cap=rule.group_cap, label=f"keys {label}")


class CascadeGuarded(Cascade):
    """:class:`Cascade` with every guard on (same parameters, guarded defaults).

    Defaults: shareable identifier values (e-mail, phone, name rules: ``group_size_keys``)
    shared by more than 50 records ignored; built-in junk
    lists on; ``unique_keys=None`` means at most one ``customer_no`` per cluster (note:
    this also keeps apart CRM duplicates of one person that carry two customer numbers -
    precision over reach; pass ``[]`` to turn it off); ``time_windows=None`` means phone
    evidence only within 45-day episodes (the minimum ageing before a number is
    reassigned; pass ``{}`` to turn it off); clusters above 200 profiles (records
    joined by authenticated ids count once) fall back to stronger rules.
    """

    name: ClassVar[str] = "cascade-guarded"
    version: ClassVar[str] = "2"
    default_unique_keys: ClassVar[tuple[str, ...]] = ("customer_no",)
    default_time_windows: ClassVar[Mapping[str, float]] = {"phone": 45.0}

    def __init__(
        self,
        *,
        rules: Sequence[Sequence[str]] | None = None,
        email_canonical: bool = False,
        phone_region: str = "US",
        phone_method: str = "sql",
        max_group_size: int | None = 50,
        group_size_keys: Sequence[str] | None = None,
        exclude_junk: bool = True,
        exclude_values: Mapping[str, Sequence[str]] | None = None,
        unique_keys: Sequence[str] | None = None,
        time_windows: Mapping[str, float] | None = None,
        max_cluster_size: int | None = 200,
    ) -> None:
        super().__init__(
            rules=rules,
            email_canonical=email_canonical,
            phone_region=phone_region,
            phone_method=phone_method,
            max_group_size=max_group_size,
            group_size_keys=group_size_keys,
            exclude_junk=exclude_junk,
            exclude_values=exclude_values,
            unique_keys=unique_keys,
            time_windows=time_windows,
            max_cluster_size=max_cluster_size,
        )
