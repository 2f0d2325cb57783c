"""Probabilistic matching with Splink (Fellegi-Sunter), run on the harness's DuckDB.

Splink works in the run's own connection (``DuckDBAPI(connection=ctx.con)``) and reads
the records view in place; everything it creates there is named ``__splink__...``.
Training follows Splink's recommended recipe: the prior match probability from
near-certain deterministic rules, u-probabilities by random sampling (seeded, so the
run is reproducible), then m-probabilities by expectation maximisation over a few
blocked training sessions. Prediction scores every pair admitted by the blocking rules;
clusters are the connected components of pairs at or above ``threshold``.

Records identical on every compared column are first collapsed into one *profile*
(``collapse_identical``): Splink sees each profile once and its clusters are mapped
back to the records. Event-like sources (a login per visit with only an account id, a
point-of-sale record per purchase with only a card token) otherwise repeat one
identifier dozens of times per person; random pairs then agree on it mostly because
they *are* the same person, so the u-probability estimated by random sampling is
inflated by matches, the evidence of a shared token looks weak, and none of those
records link (pairwise recall 0 on identity-graph small, 0.27 on cdp-realistic small
without the collapse; 0.22 and 0.53 with it). Identical records are indistinguishable
to the model anyway; each is linked to its profile's representative (the smallest
``record_id``) by a pair of score 1.0. Only records that agree on an identifier
(e-mail, phone, a first-party id) collapse, never on descriptive fields alone, and
nothing collapses for ``link_only`` (it would link records within one source). The
emitted pairs are Splink's scored profile pairs plus those (representative, member)
pairs, so a group of ``k`` identical records contributes ``k - 1`` pairs, not
``k (k - 1) / 2``: pair-level metrics (candidates, threshold sweeps) count profile
links; cluster metrics count every record.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from splink import DuckDBAPI, Linker, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.exceptions import EMTrainingException

from bench.api import (
    BaseMatcher,
    MatchContext,
    MatchResult,
    UnsupportedInput,
    execute,
    query,
    quote_ident,
    table_columns,
)
from matchers.splink_settings import (
    ID_COLUMNS,
    PII_COLUMNS,
    default_settings,
    default_training_rules,
    deterministic_rules,
)

__all__ = ["SplinkMatcher"]

log = logging.getLogger(__name__)

_LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")
#: Columns whose agreement (with every other compared column) makes identical records
#: one profile: identifiers, not descriptive fields.
COLLAPSE_KEYS: frozenset[str] = frozenset({"email", "phone", *ID_COLUMNS})


def _load_settings(settings: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """Return a private copy of the user's settings (dict or path to a JSON file)."""
    if settings is None:
        return {}
    if isinstance(settings, Mapping):
        return copy.deepcopy(dict(settings))
    path = Path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"splink: cannot read settings JSON {path}: {exc}"
        raise ValueError(msg) from exc
    if not isinstance(data, dict):
        msg = f"splink: settings file {path} must hold a JSON object, got {type(data).__name__}"
        raise ValueError(msg)
    return data


def _is_trained(settings: Mapping[str, Any]) -> bool:
    """Whether the settings are a saved model: m and u values present on the levels.

    A model saved by Splink leaves m (or u) empty for levels never observed in
    training; those fall back to Splink's defaults, so presence anywhere is the test.
    """
    comparisons = settings.get("comparisons") or []
    if not comparisons or not all(isinstance(c, Mapping) for c in comparisons):
        return False
    levels = [
        level
        for comparison in comparisons
        for level in comparison.get("comparison_levels", [])
        if not level.get("is_null_level")
    ]
    has_m = any(level.get("m_probability") is not None for level in levels)
    has_u = any(level.get("u_probability") is not None for level in levels)
    return has_m and has_u


def _rule(rule: str | Sequence[str]) -> Any:
    """A training rule given as SQL text or as a list of columns to block on."""
    return rule if isinstance(rule, str) else block_on(*rule)


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _populated_columns(ctx: MatchContext) -> dict[str, str]:
    """Columns (name -> SQL type) of the records that hold values in at least two records.

    A column that exists but is empty (e.g. names on anonymous cookie records) cannot be
    compared and would leave its EM session without pairs.
    """
    columns = table_columns(ctx.con, ctx.records)
    counts = query(
        ctx.con,
        "SELECT "
        + ", ".join(f"count({quote_ident(c)}) AS {quote_ident(c)}" for c in columns)
        + f" FROM {quote_ident(ctx.records)}",
        step="splink: populated columns",
    ).to_pylist()[0]
    return {c: t for c, t in columns.items() if counts[c] >= 2}


def _count_records(ctx: MatchContext) -> int:
    table = quote_ident(ctx.records)
    rows = query(ctx.con, f"SELECT count(*) AS n FROM {table}", step="count records")
    return int(rows.column("n")[0].as_py())


#: Records sampled on each side of a blocking join when counting its pairs on large
#: inputs (Splink counts real pairs, so exact counts of an exploding rule are as costly
#: as the explosion itself).
_COUNT_SAMPLE_RECORDS = 20_000


def _sample_proportion(n: int) -> float:
    """Record sampling proportion for Splink's pair counts: exact up to 20k records."""
    return min(1.0, max(0.01, _COUNT_SAMPLE_RECORDS / max(n, 1)))


@contextlib.contextmanager
def _result_df_guard(ctx: MatchContext) -> Iterator[bool]:
    """Let a Splink blocking analysis register its ``result_df`` relation, then remove it.

    Splink's pair counting (used by the prior estimator and the blocking analysis)
    registers a relation named ``result_df`` in the connection, outside its
    ``__splink__`` namespace. Yields whether that name is free (run the analysis only
    then) and unregisters it afterwards, so the connection holds nothing unprefixed of
    ours.
    """
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
def _quiet_sampled_counts() -> Iterator[None]:
    """Silence Splink's warning that a sampled pair count rests on few sampled pairs.

    Rules that admit few pairs have few sampled pairs; a rough estimate of a small
    count does not matter against a budget of millions (or for the prior).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The sampled blocking analysis", category=UserWarning
        )
        yield


def _count_comparisons(
    ctx: MatchContext,
    records: Any,
    rules: list[Any],
    settings: Mapping[str, Any],
    proportion: float,
) -> list[dict[str, Any]]:
    """Splink's marginal and cumulative pair counts of ``rules``, in order."""
    with _result_df_guard(ctx) as free:
        if not free:
            msg = "splink: a table named result_df exists; cannot count blocked pairs"
            raise ValueError(msg)
        with _quiet_sampled_counts():
            counts = count_comparisons_from_blocking_rules(
                records,
                blocking_rules=rules,
                link_type=settings.get("link_type", "dedupe_only"),
                unique_id_column_name=settings.get("unique_id_column_name", "record_id"),
                source_dataset_column_name=settings.get("source_dataset_column_name"),
                record_sample_proportion=proportion,
            )
    return [dict(c) for c in counts]


def _em_sampling_info(session: Any) -> dict[str, Any]:
    """What Splink's EM sampling decided for one session (JSON-able)."""
    info = getattr(session, "_sample_info", None)
    if not isinstance(info, Mapping):
        return {}
    keep = ("estimated_total_pairs", "sampling_applied", "expected_pairs_after_sampling")
    return {k: info.get(k) for k in keep if k in info}


class SplinkMatcher(BaseMatcher):
    """Fellegi-Sunter matching with Splink on the run's DuckDB connection.

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
        without training (see :func:`_is_trained`).
    link_type
        ``"dedupe_only"`` (all records against all), or ``"link_only"`` /
        ``"link_and_dedupe"`` with the ``source`` column as the dataset.
    u_max_pairs
        Number of random record pairs sampled to estimate the u-probabilities.
    training_rules
        Blocking rules of the EM sessions, each a SQL condition or a list of columns;
        ``None`` picks rules from the columns present so that every comparison is
        estimated at least once.
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
        carry an identifier among them. Off for ``link_only``. See the module docstring.
    """

    name: ClassVar[str] = "splink"
    version: ClassVar[str] = "4"
    lens: ClassVar[str] = "probabilistic"
    tags: ClassVar[frozenset[str]] = frozenset({"pii", "emits_pairs"})

    def __init__(
        self,
        *,
        threshold: float = 0.9,
        settings: dict[str, Any] | str | None = None,
        link_type: str = "dedupe_only",
        u_max_pairs: int = 1_000_000,
        training_rules: list[str | list[str]] | None = None,
        deterministic_recall: float = 0.7,
        max_comparisons: int | None = 50_000_000,
        em_max_pairs: int | None = 500_000,
        collapse_identical: bool = True,
    ) -> None:
        self.threshold = threshold
        self.settings = settings
        self.link_type = link_type
        self.u_max_pairs = u_max_pairs
        self.training_rules = training_rules
        self.deterministic_recall = deterministic_recall
        self.max_comparisons = max_comparisons
        self.em_max_pairs = em_max_pairs
        self.collapse_identical = collapse_identical

    # -- profiles -------------------------------------------------------------------

    def profile_columns(
        self, ctx: MatchContext, populated: Mapping[str, str] | None = None
    ) -> list[str]:
        """Columns the model compares: what identical records must agree on to collapse.

        The built-in model's populated PII columns; with your own settings (or a saved
        model) the input columns of its comparisons, read through Splink.
        """
        user = _load_settings(self.settings)
        if "comparisons" not in user:
            populated = _populated_columns(ctx) if populated is None else populated
            return [c for c in populated if c in PII_COLUMNS]
        from splink.internals.settings_creator import SettingsCreator

        merged = {"link_type": self.link_type, "unique_id_column_name": "record_id", **user}
        parsed = SettingsCreator.from_path_or_dict(merged).get_settings("duckdb")
        present = table_columns(ctx.con, ctx.records)
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

        Records collapse when they agree on every compared column (NULL in the same
        places) *and* carry at least one identifier there (:data:`COLLAPSE_KEYS`: e-mail,
        phone, first-party ids). Agreeing on weak fields alone (a city, a name) is not
        evidence enough, and Splink scores such records itself. Creates
        ``<prefix>splink_profile_of`` (``record_id -> profile``, the smallest
        ``record_id`` of the group) and a view of the representatives in ``ctx.con``.
        Returns ``ctx`` itself (and ``None``) when collapsing is off or the link type is
        ``link_only`` (a collapse would link records of one source).
        """
        link_type = _load_settings(self.settings).get("link_type", self.link_type)
        if not self.collapse_identical or link_type == "link_only":
            return ctx, None
        columns = self.profile_columns(ctx, populated)
        keys = [c for c in columns if c in COLLAPSE_KEYS]
        if not keys:
            return ctx, None  # no identifier compared: nothing may collapse
        if link_type != "dedupe_only" and "source" not in columns:
            columns.append("source")
        table = quote_ident(ctx.records)
        profile_of, reps = ctx.temp_name("splink_profile_of"), ctx.temp_name("splink_profiles")
        cols = ", ".join(quote_ident(c) for c in columns)
        has_key = " OR ".join(f"{quote_ident(c)} IS NOT NULL" for c in keys)
        execute(
            ctx.con,
            f"""CREATE OR REPLACE TEMP TABLE {quote_ident(profile_of)} AS
                SELECT record_id,
                       CASE WHEN {has_key} THEN min(record_id) OVER (PARTITION BY {cols})
                            ELSE record_id END AS profile
                FROM {table}""",
            step="splink: profiles",
        )
        execute(
            ctx.con,
            f"""CREATE OR REPLACE TEMP VIEW {quote_ident(reps)} AS
                SELECT r.* FROM {table} AS r
                JOIN {quote_ident(profile_of)} AS p
                  ON p.record_id = r.record_id AND p.profile = r.record_id""",
            step="splink: profile representatives",
        )
        counts = query(
            ctx.con,
            f"SELECT count(*) AS n, count(DISTINCT profile) AS profiles "
            f"FROM {quote_ident(profile_of)}",
            step="splink: profile counts",
        ).to_pylist()[0]
        info = {
            "records": int(counts["n"]),
            "profiles": int(counts["profiles"]),
            "columns": columns,
            "table": profile_of,
        }
        return dataclasses.replace(ctx, records=reps), info

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
        user = _load_settings(self.settings)
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
            merged = {**default_settings(columns, link_type=self.link_type), **user}
        return merged, _is_trained(merged)

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
        records = DuckDBAPI(connection=ctx.con).register(ctx.records)
        kept, budget = self._within_budget(ctx, records, settings, n)
        settings["blocking_rules_to_generate_predictions"] = kept
        plan["blocking_budget"] = budget
        if trained:
            return plan
        rules = deterministic_rules(columns)
        user_prior = "probability_two_random_records_match" in _load_settings(self.settings)
        if rules and not user_prior:
            plan["prior"] = {
                "deterministic_matching_rules": rules,
                "recall": self.deterministic_recall,
                "record_sample_proportion": _sample_proportion(n),
            }
        plan["u"] = {"max_pairs": self.u_max_pairs, "seed": ctx.seed}
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
                step["record_sample_proportion"] = _sample_proportion(n)
            plan["em"].append(step)
        return plan

    def _within_budget(
        self, ctx: MatchContext, records: Any, settings: dict[str, Any], n: int
    ) -> tuple[list[Any], dict[str, Any]]:
        """Keep the prediction rules, in order, whose pairs fit ``max_comparisons``."""
        rules = list(settings.get("blocking_rules_to_generate_predictions") or [])
        info: dict[str, Any] = {"max_comparisons": self.max_comparisons, "counted": False}
        all_pairs = n * (n - 1) // 2
        if self.max_comparisons is None or all_pairs <= self.max_comparisons:
            info["reason"] = "no budget" if self.max_comparisons is None else "all pairs fit"
            return rules, info
        if not rules:
            msg = (
                f"splink: no blocking rules, so prediction would score all {all_pairs:,} "
                f"pairs of {n:,} records, more than max_comparisons={self.max_comparisons:,}; "
                "add blocking_rules_to_generate_predictions to the settings"
            )
            raise ValueError(msg)
        proportion = _sample_proportion(n)
        dropped: list[dict[str, Any]] = []
        while True:
            counts = _count_comparisons(ctx, records, rules, settings, proportion)
            over = next(
                (
                    i
                    for i, c in enumerate(counts)
                    if c["cumulative_comparison_count"] > self.max_comparisons
                ),
                None,
            )
            if over is None:
                break
            count = counts[over]
            rules.pop(over)
            dropped.append(
                {
                    "blocking_rule": count["blocking_rule"],
                    "marginal_comparisons": count["marginal_comparison_count"],
                    "cumulative_comparisons": count["cumulative_comparison_count"],
                }
            )
            log.warning(
                "splink: dropping blocking rule %s: it adds ~%s pairs, bringing the total "
                "to ~%s, over max_comparisons=%s",
                count["blocking_rule"],
                f"{count['marginal_comparison_count']:,}",
                f"{count['cumulative_comparison_count']:,}",
                f"{self.max_comparisons:,}",
            )
            if not rules:
                msg = (
                    f"splink: every blocking rule exceeds max_comparisons="
                    f"{self.max_comparisons:,} on {n:,} records (first rule: ~"
                    f"{counts[0]['marginal_comparison_count']:,} pairs); use tighter rules "
                    "or raise the budget"
                )
                raise ValueError(msg)
        info.update(
            counted=True,
            record_sample_proportion=proportion,
            estimated_comparisons=counts[-1]["cumulative_comparison_count"] if counts else 0,
            rules=[
                {
                    "blocking_rule": c["blocking_rule"],
                    "marginal_comparisons": c["marginal_comparison_count"],
                    "cumulative_comparisons": c["cumulative_comparison_count"],
                }
                for c in counts
            ],
            dropped=dropped,
        )
        return rules, info

    def fit(self, ctx: MatchContext) -> Self:
        """Build the linker on ``ctx.con`` and train it (unless given a trained model)."""
        phases: dict[str, float] = {}
        t0 = time.perf_counter()
        columns = _populated_columns(ctx)
        ctx, self.profiles_ = self.profiles(ctx, columns)
        phases["profiles"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = self.plan(ctx, columns=columns)
        phases["plan"] = time.perf_counter() - t0
        self.fitted_on_ = id(ctx.con)
        self.profile_ctx_ = ctx
        self.plan_ = plan
        if plan["n_records"] < 2:  # nothing to compare; Splink's estimators divide by zero
            self.linker_ = None
            self.fit_diagnostics_ = {"trained_here": False, "training_rules": [], "phases": {}}
            return self
        db_api = DuckDBAPI(connection=ctx.con)
        records = db_api.register(ctx.records)
        # log_level=None: leave logging configuration to the application.
        linker = Linker(records, plan["settings"], log_level=None)
        if plan["prior"] is not None:
            t0 = time.perf_counter()
            self._estimate_prior(ctx, linker, plan["prior"])
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
            for step in plan["em"]:
                kwargs = {k: v for k, v in step.items() if k != "blocking_rule"}
                # A session edits the live model as it starts (it drops the comparisons
                # of its blocking rule and sets its own prior), so a failed one must be
                # rolled back by hand.
                before = linker._settings_obj.core_model_settings.copy()
                try:
                    session = linker.training.estimate_parameters_using_expectation_maximisation(
                        _rule(step["blocking_rule"]), **kwargs
                    )
                except (EMTrainingException, ValueError) as exc:
                    # A rule whose block is empty in this dataset trains nothing; on a
                    # tiny block EM can also drive an m-probability to 0, which Splink
                    # refuses (ValueError: values below 1e-300). The model is restored;
                    # the other sessions still cover its comparisons.
                    linker._settings_obj.core_model_settings = before
                    log.warning("splink: EM session %s skipped: %s", step["blocking_rule"], exc)
                    em_skipped.append(step["blocking_rule"])
                    continue
                training.append(step["blocking_rule"])
                em_sampling.append(_em_sampling_info(session))
            phases["em"] = time.perf_counter() - t0
            if not training:
                log.warning(
                    "splink: every EM session was skipped (%s); m-probabilities keep "
                    "Splink's defaults",
                    ", ".join(map(str, em_skipped)),
                )

        self.linker_ = linker
        self.fit_diagnostics_ = {
            "trained_here": not plan["trained"],
            "training_rules": training,
            "em_skipped": em_skipped,
            "em_sampling": em_sampling,
            "blocking_budget": plan["blocking_budget"],
            "phases": phases,
        }
        return self

    def _estimate_prior(self, ctx: MatchContext, linker: Linker, prior: dict[str, Any]) -> None:
        """Estimate the prior match probability from near-certain rules."""
        with _result_df_guard(ctx) as free:
            if not free:
                log.warning("splink: a table named result_df exists; keeping the default prior")
                return
            model = linker._settings_obj.core_model_settings
            before = model.probability_two_random_records_match
            try:
                with _quiet_sampled_counts():
                    linker.training.estimate_probability_two_random_records_match(
                        [block_on(*r) for r in prior["deterministic_matching_rules"]],
                        recall=prior["recall"],
                        record_sample_proportion=prior["record_sample_proportion"],
                    )
            except ValueError as exc:
                # e.g. the rules find fewer pairs than the assumed recall allows
                linker._settings_obj.core_model_settings.probability_two_random_records_match = (
                    before
                )
                log.warning("splink: prior not estimated (%s); keeping %s", exc, before)
                return
            model = linker._settings_obj.core_model_settings
            estimate = model.probability_two_random_records_match
            if not 0.0 < estimate < 1.0:
                # no pair met the rules (few records, or identical ones already collapsed
                # into one profile): a prior of 0 or 1 would make every score 0 or 1
                model.probability_two_random_records_match = before
                log.warning(
                    "splink: the deterministic rules gave a prior of %s; keeping %s",
                    estimate,
                    before,
                )

    # -- matching -------------------------------------------------------------------

    def match(self, ctx: MatchContext) -> MatchResult:
        """Score the blocked pairs and cluster them at ``threshold``."""
        if getattr(self, "fitted_on_", None) != id(ctx.con):
            self.fit(ctx)
        if self.linker_ is None:
            return self._trivial(ctx)
        linker: Linker = self.linker_
        phases = dict(self.fit_diagnostics_["phases"])

        t0 = time.perf_counter()
        predictions = linker.inference.predict()
        phases["predict"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=self.threshold
        )
        phases["cluster"] = time.perf_counter() - t0

        n_comparisons = (
            query(ctx.con, f"SELECT count(*) AS n FROM {predictions.physical_name}", step="count")
            .column("n")[0]
            .as_py()
        )
        scored = f"""
            SELECT least(record_id_l, record_id_r) AS record_id_l,
                   greatest(record_id_l, record_id_r) AS record_id_r,
                   match_probability AS score
            FROM {predictions.physical_name}
        """
        clusters_sql = f"SELECT record_id, cluster_id FROM {clustered.physical_name}"
        pairs = ctx.con.sql(self._with_profiles_pairs(scored))
        clusters = ctx.con.sql(self._with_profiles_clusters(clusters_sql))
        diagnostics = {
            **{k: v for k, v in self.fit_diagnostics_.items() if k != "phases"},
            "phases": phases,
            "comparisons": int(n_comparisons),
            "probability_two_random_records_match": _finite(
                linker._settings_obj._probability_two_random_records_match
            ),
            "m_u": self._m_u_summary(linker),
            "profiles": self._profile_summary(),
            "blocking_rules": [
                br.blocking_rule_sql
                for br in linker._settings_obj._blocking_rules_to_generate_predictions
            ],
        }
        return MatchResult(clusters=clusters, pairs=pairs, diagnostics=diagnostics)

    def _trivial(self, ctx: MatchContext) -> MatchResult:
        """Output for fewer than two profiles: each alone, identical records together."""
        table = quote_ident(ctx.records)
        clusters = ctx.con.sql(
            self._with_profiles_clusters(f"SELECT record_id, record_id AS cluster_id FROM {table}")
        )
        pairs = ctx.con.sql(
            self._with_profiles_pairs(
                "SELECT record_id AS record_id_l, record_id AS record_id_r, 0.0::DOUBLE AS score "
                f"FROM {table} WHERE false"
            )
        )
        diagnostics = {**self.fit_diagnostics_, "comparisons": 0}
        diagnostics["profiles"] = self._profile_summary()
        return MatchResult(clusters, pairs, diagnostics)

    def _with_profiles_clusters(self, profile_clusters: str) -> str:
        """Clusters of the profiles (``record_id, cluster_id``) extended to every record."""
        info = getattr(self, "profiles_", None)
        if info is None:
            return profile_clusters
        return f"""
            SELECT p.record_id, c.cluster_id
            FROM {quote_ident(info["table"])} AS p
            JOIN ({profile_clusters}) AS c ON c.record_id = p.profile
        """

    def _with_profiles_pairs(self, profile_pairs: str) -> str:
        """Scored profile pairs plus each collapsed record with its representative (1.0)."""
        info = getattr(self, "profiles_", None)
        if info is None:
            return profile_pairs
        return f"""
            {profile_pairs}
            UNION ALL
            SELECT profile AS record_id_l, record_id AS record_id_r, 1.0::DOUBLE AS score
            FROM {quote_ident(info["table"])} WHERE record_id <> profile
        """

    def _profile_summary(self) -> dict[str, Any] | None:
        info = getattr(self, "profiles_", None)
        return None if info is None else {k: v for k, v in info.items() if k != "table"}

    @staticmethod
    def _m_u_summary(linker: Linker) -> dict[str, list[dict[str, Any]]]:
        """Trained m and u per comparison level, from the saved model (cheap)."""
        model = linker.misc.save_model_to_json()
        summary: dict[str, list[dict[str, Any]]] = {}
        for comparison in model.get("comparisons", []):
            levels = []
            for level in comparison.get("comparison_levels", []):
                if level.get("is_null_level"):
                    continue
                levels.append(
                    {
                        "level": level.get("label_for_charts"),
                        "m": _finite(level.get("m_probability")),
                        "u": _finite(level.get("u_probability")),
                    }
                )
            summary[comparison.get("output_column_name", "?")] = levels
        return summary
