"""Probabilistic matching with Splink (Fellegi-Sunter), run on the run's engine.

Splink works where the run's SQL runs (:mod:`matchers.splink_backend`): in the run's
DuckDB connection (``DuckDBAPI(connection=ctx.con)``), or, on a Spark run, in the run's
Spark session (Splink's Spark backend). It reads the records view in place; everything
it creates is named ``__splink__...``, and the adapter's own SQL (profiles, counts,
clustering, outputs) goes through ``ctx.engine``.
Training follows Splink's recommended recipe: the prior match probability from
near-certain deterministic rules, u-probabilities by random sampling (seeded, so the
run is reproducible) on a sample sized to the data, then m-probabilities by expectation
maximisation over a few blocked training sessions; a level that no training observed
gets an explicit, logged fallback (:mod:`matchers.splink_training`). Prediction scores
every pair admitted by the blocking rules; clusters are the connected components of
pairs at or above ``threshold``, with no cluster over ``max_cluster_profiles`` profiles
(:func:`matchers.splink_budget.guarded_clusters`).

Records identical on every compared column are first collapsed into one *profile*
(``collapse_identical``): Splink sees each profile once and its clusters are mapped
back to the records (:mod:`matchers.splink_profiles` says why and how). The prediction
rules are cut to a pair budget (``max_comparisons``; :mod:`matchers.splink_budget`),
and the training calls that need care are in :mod:`matchers.splink_training`. This
module is the adapter: the settings, the plan, ``fit`` and ``match``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from splink import Linker

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    UnsupportedInput,
    query,
    quote_ident,
    table_columns,
)
from matchers.splink_backend import database_api, dialect
from matchers.splink_budget import guarded_clusters, sample_proportion, within_budget
from matchers.splink_profiles import (
    collapse_profiles,
    profile_summary,
    records_clusters_sql,
    records_pairs_sql,
)
from matchers.splink_settings import (
    PII_COLUMNS,
    check_dialect,
    default_settings,
    default_training_rules,
    deterministic_rules,
    is_trained,
    load_settings,
)
from matchers.splink_training import (
    estimate_prior,
    fill_untrained_levels,
    finite_or_none,
    m_u_summary,
    train_em,
    u_sample_pairs,
)

__all__ = ["SplinkMatcher"]

log = logging.getLogger(__name__)

_LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")


def _populated_columns(ctx: MatchContext) -> dict[str, str]:
    """Columns (name -> SQL type) of the records that hold values in at least two records.

    A column that exists but is empty (e.g. names on anonymous cookie records) cannot be
    compared and would leave its EM session without pairs.
    """
    columns = table_columns(ctx.engine, ctx.records)
    counts = query(
        ctx.engine,
        "SELECT "
        + ", ".join(f"count({quote_ident(c)}) AS {quote_ident(c)}" for c in columns)
        + f" FROM {quote_ident(ctx.records)}",
        step="splink: populated columns",
    ).to_pylist()[0]
    return {c: t for c, t in columns.items() if counts[c] >= 2}


def _fit_key(ctx: MatchContext) -> int:
    """What a fit belongs to: the run's DuckDB connection, or its engine elsewhere."""
    return id(ctx.con) if ctx.engine_kind == "duckdb" else id(ctx.engine)


def _count_records(ctx: MatchContext) -> int:
    table = quote_ident(ctx.records)
    rows = query(ctx.engine, f"SELECT count(*) AS n FROM {table}", step="count records")
    return int(rows.column("n")[0].as_py())


class SplinkMatcher(BaseMatcher):
    """Fellegi-Sunter matching with Splink on the run's engine (DuckDB or Spark).

    Parameters
    ----------
    threshold
        Match probability at or above which a scored pair links two records into one
        cluster.
    settings
        A Splink settings dict, or a path to a settings/model JSON file. Its keys
        override the built-in settings (:func:`matchers.splink_settings.default_settings`),
        e.g. ``{"blocking_rules_to_generate_predictions": [...]}`` keeps the built-in
        comparisons. A saved, trained model (every level has m and u) is used as is,
        without training (see :func:`matchers.splink_settings.is_trained`). SQL text in
        the settings (conditions, blocking rules) is run as written, so it must be in the
        run's engine's dialect (DuckDB's, or Spark's: backticks, not double quotes, around
        names); a model saved on the other engine is refused
        (:func:`matchers.splink_settings.check_dialect`). Comparison and blocking-rule
        objects of Splink's libraries (``cl.ExactMatch``, ``block_on``) suit both.
    link_type
        ``"dedupe_only"`` (all records against all), or ``"link_only"`` /
        ``"link_and_dedupe"`` with the ``source`` column as the dataset.
    u_max_pairs
        Fewest random record pairs sampled to estimate the u-probabilities (Splink's
        ``max_pairs``; its default, 1e6).
    u_pairs_per_profile
        Random pairs per profile for the u estimate: the sample is
        ``max(u_max_pairs, u_pairs_per_profile * profiles)`` pairs, so each comparison
        level keeps its counts as the data grows (Splink's docs: 1e7 "often adequate",
        1e8-1e9 best). ``None``: ``u_max_pairs`` at every size. A level still unobserved
        gets the fallback of :func:`matchers.splink_training.fill_untrained_levels`
        (diagnostics: ``untrained_levels``).
    training_rules
        Blocking rules of the EM sessions, each a SQL condition (in the engine's dialect)
        or a list of columns; ``None`` picks rules from the columns present so that every
        comparison is estimated at least once.
    deterministic_recall
        Assumed recall of the near-certain rules used to estimate the prior probability
        that two random records match.
    max_comparisons
        Budget of record pairs that prediction may score. Before predicting, Splink's
        blocking analysis (``count_comparisons_from_blocking_rules``; exact on small
        inputs, from a deterministic record sample on large ones) counts the pairs each
        prediction rule adds; rules are kept in order while the running total stays
        within the budget, and a rule that would exceed it is dropped with a logged
        warning. The counts are in the diagnostics (``blocking_budget``). ``None``
        disables the check.
    em_max_pairs
        Cap on the pairs of each EM training session (Splink's ``max_pairs``: records
        are sampled by a hash of their id, so the cap is deterministic). ``None``
        trains on every blocked pair.
    collapse_identical
        Give Splink one profile per group of records identical on every compared column
        (the built-in model's populated PII columns, or the input columns of your own /
        a saved model's comparisons; the ``source`` too for ``link_and_dedupe``) that
        carry an identifier among them. Off for ``link_only``. See
        :mod:`matchers.splink_profiles`.
    max_cluster_profiles
        Cap on the profiles of one cluster: a connected component over it is
        re-clustered at a raised threshold until its parts fit
        (:func:`matchers.splink_budget.guarded_clusters`; diagnostics:
        ``cluster_guard``). ``None``: plain connected components.
    """

    name: ClassVar[str] = "splink"
    version: ClassVar[str] = "6"
    lens: ClassVar[str] = "probabilistic"
    tags: ClassVar[frozenset[str]] = frozenset({"pii", "emits_pairs"})

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        settings: dict[str, Any] | str | None = None,
        link_type: str = "dedupe_only",
        u_max_pairs: int = 1_000_000,
        u_pairs_per_profile: float | None = 20.0,
        training_rules: list[str | list[str]] | None = None,
        deterministic_recall: float = 0.7,
        max_comparisons: int | None = 50_000_000,
        em_max_pairs: int | None = 500_000,
        collapse_identical: bool = True,
        max_cluster_profiles: int | None = 100,
    ) -> None:
        self.threshold = threshold
        self.settings = settings
        self.link_type = link_type
        self.u_max_pairs = u_max_pairs
        self.u_pairs_per_profile = u_pairs_per_profile
        self.training_rules = training_rules
        self.deterministic_recall = deterministic_recall
        self.max_comparisons = max_comparisons
        self.em_max_pairs = em_max_pairs
        self.collapse_identical = collapse_identical
        self.max_cluster_profiles = max_cluster_profiles

    # -- profiles -------------------------------------------------------------------

    def profile_columns(
        self, ctx: MatchContext, populated: Mapping[str, str] | None = None
    ) -> list[str]:
        """Columns the model compares: what identical records must agree on to collapse.

        The built-in model's populated PII columns; with your own settings (or a saved
        model) the input columns of its comparisons, read through Splink.
        """
        user = load_settings(self.settings)
        if "comparisons" not in user:
            populated = _populated_columns(ctx) if populated is None else populated
            return [c for c in populated if c in PII_COLUMNS]
        from splink.internals.settings_creator import SettingsCreator

        check_dialect(user, dialect(ctx))
        merged = {"link_type": self.link_type, "unique_id_column_name": "record_id", **user}
        parsed = SettingsCreator.from_path_or_dict(merged).get_settings(dialect(ctx))
        present = table_columns(ctx.engine, ctx.records)
        used = [c.unquote().name for c in parsed._columns_used_by_comparisons]
        missing = sorted({c for c in used if c not in present})
        if missing:
            msg = (
                f"splink: the settings compare column(s) {', '.join(missing)} that the "
                f"records do not have (they have {', '.join(present)})"
            )
            raise ValueError(msg)
        return [c for c in dict.fromkeys(used) if c != "record_id"]

    def profiles(
        self, ctx: MatchContext, populated: Mapping[str, str] | None = None
    ) -> tuple[MatchContext, dict[str, Any] | None]:
        """The context Splink runs on: one record per profile (see ``collapse_identical``).

        :func:`matchers.splink_profiles.collapse_profiles` on the compared columns
        (:meth:`profile_columns`). Returns ``ctx`` itself (and ``None``) when collapsing
        is off or the link type is ``link_only`` (a collapse would link records of one
        source).
        """
        link_type = load_settings(self.settings).get("link_type", self.link_type)
        if not self.collapse_identical or link_type == "link_only":
            return ctx, None
        return collapse_profiles(ctx, self.profile_columns(ctx, populated), link_type)

    # -- building the model ---------------------------------------------------------

    def resolved_settings(
        self, ctx: MatchContext, *, columns: Mapping[str, str] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Settings for this dataset: built-in ones overridden by the user's.

        ``columns`` (name -> SQL type) are the populated columns the built-in model is
        built from; default: those of ``ctx.records``.

        Returns
        -------
        tuple
            The settings dict and whether it is an already trained model.
        """
        if self.link_type not in _LINK_TYPES:
            msg = f"splink: link_type must be one of {_LINK_TYPES}, got {self.link_type!r}"
            raise ValueError(msg)
        user = load_settings(self.settings)
        check_dialect(user, dialect(ctx))
        if "comparisons" in user:
            merged = {"link_type": self.link_type, "unique_id_column_name": "record_id", **user}
        else:
            columns = _populated_columns(ctx) if columns is None else columns
            if not any(c in columns for c in PII_COLUMNS):
                msg = (
                    "splink: the records have none of the PII columns the built-in model "
                    f"compares ({', '.join(PII_COLUMNS)}); have {', '.join(columns)}. "
                    "Pass settings=... with your own comparisons to use other columns."
                )
                raise UnsupportedInput(msg)
            built_in = default_settings(columns, link_type=self.link_type, dialect=dialect(ctx))
            merged = {**built_in, **user}
        return merged, is_trained(merged)

    def plan(
        self, ctx: MatchContext, *, columns: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The whole Splink recipe for this dataset, as JSON-able data.

        ``settings`` is the settings dict handed to ``Linker`` (prediction rules already
        cut to the ``max_comparisons`` budget); ``prior``, ``u`` and ``em`` are the
        arguments of the training calls, in order (``None``/empty for a trained model).
        :meth:`fit` executes exactly this plan on the profiles (:meth:`profiles`; the
        records themselves with ``collapse_identical=False``), with ``columns`` the
        populated columns of the records (default: of ``ctx.records``); a benchmark can
        replay it with plain Splink calls to measure the adapter's overhead.
        """
        columns = _populated_columns(ctx) if columns is None else columns
        settings, trained = self.resolved_settings(ctx, columns=columns)
        n = _count_records(ctx)
        plan: dict[str, Any] = {
            "n_records": n,
            "settings": settings,
            "trained": trained,
            "prior": None,
            "u": None,
            "em": [],
            "blocking_budget": {"max_comparisons": self.max_comparisons, "counted": False},
        }
        if n < 2:
            return plan
        records = database_api(ctx).register(ctx.records)
        kept, budget = within_budget(ctx, records, settings, n, self.max_comparisons)
        settings["blocking_rules_to_generate_predictions"] = kept
        plan["blocking_budget"] = budget
        if trained:
            return plan
        rules = deterministic_rules(columns)
        user_prior = "probability_two_random_records_match" in load_settings(self.settings)
        if rules and not user_prior:
            plan["prior"] = {
                "deterministic_matching_rules": rules,
                "recall": self.deterministic_recall,
                "record_sample_proportion": sample_proportion(n),
            }
        plan["u"] = {
            "max_pairs": u_sample_pairs(n, self.u_max_pairs, self.u_pairs_per_profile),
            "seed": ctx.seed,
        }
        sessions = (
            self.training_rules
            if self.training_rules is not None
            else default_training_rules(columns)
        )
        # A session can never exceed all pairs: skip Splink's sampling probe then.
        cap = self.em_max_pairs
        if cap is not None and n * (n - 1) // 2 <= cap:
            cap = None
        for rule in sessions:
            step: dict[str, Any] = {"blocking_rule": rule}
            if cap is not None:
                step["max_pairs"] = cap
                step["record_sample_proportion"] = sample_proportion(n)
            plan["em"].append(step)
        return plan

    def fit(self, ctx: MatchContext) -> Self:
        """Build the linker on the run's engine and train it (unless given a trained model)."""
        phases: dict[str, float] = {}
        t0 = time.perf_counter()
        columns = _populated_columns(ctx)
        ctx, self.profiles_ = self.profiles(ctx, columns)
        phases["profiles"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = self.plan(ctx, columns=columns)
        phases["plan"] = time.perf_counter() - t0
        self.fitted_on_ = _fit_key(ctx)
        self.profile_ctx_ = ctx
        self.plan_ = plan
        if plan["n_records"] < 2:  # nothing to compare; Splink's estimators divide by zero
            self.linker_ = None
            self.fit_diagnostics_ = {"trained_here": False, "training_rules": [], "phases": {}}
            return self
        records = database_api(ctx).register(ctx.records)
        # log_level=None: leave logging configuration to the application.
        linker = Linker(records, plan["settings"], log_level=None)
        if plan["prior"] is not None:
            t0 = time.perf_counter()
            estimate_prior(ctx, linker, plan["prior"])
            phases["prior"] = time.perf_counter() - t0
        if plan["u"] is not None:
            t0 = time.perf_counter()
            linker.training.estimate_u_using_random_sampling(**plan["u"])
            phases["u_estimation"] = time.perf_counter() - t0
        training: list[Any] = []
        em_skipped: list[Any] = []
        em_sampling: list[dict[str, Any]] = []
        if plan["em"]:
            t0 = time.perf_counter()
            training, em_skipped, em_sampling = train_em(linker, plan["em"])
            phases["em"] = time.perf_counter() - t0
            if not training:
                log.warning(
                    "splink: every EM session was skipped (%s); m-probabilities keep "
                    "Splink's defaults",
                    ", ".join(map(str, em_skipped)),
                )

        untrained: list[dict[str, Any]] = []
        if not plan["trained"]:
            u_pairs = plan["u"]["max_pairs"] if plan["u"] is not None else None
            untrained = fill_untrained_levels(ctx, linker, u_pairs)

        self.linker_ = linker
        self.fit_diagnostics_ = {
            "trained_here": not plan["trained"],
            "u_sample": plan["u"],
            "untrained_levels": untrained,
            "training_rules": training,
            "em_skipped": em_skipped,
            "em_sampling": em_sampling,
            "blocking_budget": plan["blocking_budget"],
            "phases": phases,
        }
        return self

    # -- matching -------------------------------------------------------------------

    def match(self, ctx: MatchContext) -> MatchResult:
        """Score the blocked pairs and cluster them at ``threshold``."""
        if getattr(self, "fitted_on_", None) != _fit_key(ctx):
            self.fit(ctx)
        if self.linker_ is None:
            return self._trivial(ctx)
        linker: Linker = self.linker_
        phases = dict(self.fit_diagnostics_["phases"])

        t0 = time.perf_counter()
        predictions = linker.inference.predict()
        phases["predict"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        clusters_sql, guard = guarded_clusters(
            self.profile_ctx_, predictions.physical_name, self.threshold, self.max_cluster_profiles
        )
        phases["cluster"] = time.perf_counter() - t0

        n_comparisons = (
            query(
                ctx.engine, f"SELECT count(*) AS n FROM {predictions.physical_name}", step="count"
            )
            .column("n")[0]
            .as_py()
        )
        scored = f"""
            SELECT least(record_id_l, record_id_r) AS record_id_l,
                   greatest(record_id_l, record_id_r) AS record_id_r,
                   match_probability AS score
            FROM {predictions.physical_name}
        """
        pairs = ctx.rows(records_pairs_sql(self._profile_info(), scored), "splink_pairs")
        clusters = ctx.rows(
            records_clusters_sql(self._profile_info(), clusters_sql), "splink_clusters"
        )
        diagnostics = {
            **{k: v for k, v in self.fit_diagnostics_.items() if k != "phases"},
            "phases": phases,
            "comparisons": int(n_comparisons),
            "cluster_guard": guard,
            "probability_two_random_records_match": finite_or_none(
                linker._settings_obj._probability_two_random_records_match
            ),
            "m_u": m_u_summary(linker),
            "profiles": profile_summary(self._profile_info()),
            "blocking_rules": [
                br.blocking_rule_sql
                for br in linker._settings_obj._blocking_rules_to_generate_predictions
            ],
        }
        return MatchResult(clusters=clusters, pairs=pairs, diagnostics=diagnostics)

    def _trivial(self, ctx: MatchContext) -> MatchResult:
        """Output for fewer than two profiles: each alone, identical records together."""
        table = quote_ident(ctx.records)
        clusters = ctx.rows(
            records_clusters_sql(
                self._profile_info(), f"SELECT record_id, record_id AS cluster_id FROM {table}"
            ),
            "splink_clusters",
        )
        pairs = ctx.rows(
            records_pairs_sql(
                self._profile_info(),
                "SELECT record_id AS record_id_l, record_id AS record_id_r, 0.0::DOUBLE AS score "
                f"FROM {table} WHERE false",
            ),
            "splink_pairs",
        )
        diagnostics = {**self.fit_diagnostics_, "comparisons": 0}
        diagnostics["profiles"] = profile_summary(self._profile_info())
        return MatchResult(clusters, pairs, diagnostics)

    def _profile_info(self) -> dict[str, Any] | None:
        """The collapse of the last fit (:meth:`profiles`), or ``None`` without one."""
        return getattr(self, "profiles_", None)
