"""Probabilistic matching with Splink (Fellegi-Sunter), run on the harness's DuckDB.

Splink works in the run's own connection (``DuckDBAPI(connection=ctx.con)``) and reads
the records view in place; everything it creates there is named ``__splink__...``.
Training follows Splink's recommended recipe: the prior match probability from
near-certain deterministic rules, u-probabilities by random sampling (seeded, so the
run is reproducible), then m-probabilities by expectation maximisation over a few
blocked training sessions. Prediction scores every pair admitted by the blocking rules;
clusters are the connected components of pairs at or above ``threshold``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from splink import DuckDBAPI, Linker, block_on

from bench.api import BaseMatcher, MatchContext, MatchResult, UnsupportedInput
from bench.engine import query, quote_ident, table_columns
from matchers.splink_settings import (
    PII_COLUMNS,
    default_settings,
    default_training_rules,
    deterministic_rules,
)

__all__ = ["SplinkMatcher"]

log = logging.getLogger(__name__)

_LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")


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
    """

    name: ClassVar[str] = "splink"
    version: ClassVar[str] = "1"
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
    ) -> None:
        self.threshold = threshold
        self.settings = settings
        self.link_type = link_type
        self.u_max_pairs = u_max_pairs
        self.training_rules = training_rules
        self.deterministic_recall = deterministic_recall

    # -- building the model ---------------------------------------------------------

    def resolved_settings(self, ctx: MatchContext) -> tuple[dict[str, Any], bool]:
        """Settings for this dataset: built-in ones overridden by the user's.

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
            columns = table_columns(ctx.con, ctx.records)
            if not any(c in columns for c in PII_COLUMNS):
                msg = (
                    "splink: the records have none of the PII columns the built-in model "
                    f"compares ({', '.join(PII_COLUMNS)}); have {', '.join(columns)}. "
                    "Pass settings=... with your own comparisons to use other columns."
                )
                raise UnsupportedInput(msg)
            merged = {**default_settings(columns, link_type=self.link_type), **user}
        return merged, _is_trained(merged)

    def fit(self, ctx: MatchContext) -> Self:
        """Build the linker on ``ctx.con`` and train it (unless given a trained model)."""
        settings, trained = self.resolved_settings(ctx)
        columns = ctx.columns()
        self.fitted_on_ = id(ctx.con)
        n_records = (
            query(
                ctx.con,
                f"SELECT count(*) AS n FROM {quote_ident(ctx.records)}",
                step="count records",
            )
            .column("n")[0]
            .as_py()
        )
        if n_records < 2:  # nothing to compare; Splink's estimators divide by zero here
            self.linker_ = None
            self.fit_diagnostics_ = {"trained_here": False, "training_rules": [], "phases": {}}
            return self
        db_api = DuckDBAPI(connection=ctx.con)
        records = db_api.register(ctx.records)
        # log_level=None: leave logging configuration to the application.
        linker = Linker(records, settings, log_level=None)
        phases: dict[str, float] = {}
        training: list[Any] = []
        if not trained:
            user_prior = "probability_two_random_records_match" in _load_settings(self.settings)
            rules = deterministic_rules(columns)
            if rules and not user_prior:
                t0 = time.perf_counter()
                self._estimate_prior(ctx, linker, rules)
                phases["prior"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            linker.training.estimate_u_using_random_sampling(
                max_pairs=self.u_max_pairs, seed=ctx.seed
            )
            phases["u_estimation"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            sessions = (
                self.training_rules
                if self.training_rules is not None
                else default_training_rules(columns)
            )
            for rule in sessions:
                linker.training.estimate_parameters_using_expectation_maximisation(_rule(rule))
                training.append(rule)
            phases["em"] = time.perf_counter() - t0

        self.linker_ = linker
        self.fit_diagnostics_ = {
            "trained_here": not trained,
            "training_rules": training,
            "phases": phases,
        }
        return self

    def _estimate_prior(self, ctx: MatchContext, linker: Linker, rules: list[list[str]]) -> None:
        """Estimate the prior match probability from near-certain rules.

        Splink's estimator registers a relation named ``result_df`` in the connection
        (outside its ``__splink__`` namespace): run it only when that name is free, and
        unregister it afterwards so the connection holds nothing unprefixed of ours.
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
            log.warning("splink: a table named result_df exists; keeping the default prior")
            return
        try:
            linker.training.estimate_probability_two_random_records_match(
                [block_on(*r) for r in rules], recall=self.deterministic_recall
            )
        finally:
            ctx.con.unregister("result_df")

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
        pairs = ctx.con.sql(
            f"""
            SELECT least(record_id_l, record_id_r) AS record_id_l,
                   greatest(record_id_l, record_id_r) AS record_id_r,
                   match_probability AS score
            FROM {predictions.physical_name}
            """
        )
        clusters = ctx.con.sql(f"SELECT record_id, cluster_id FROM {clustered.physical_name}")
        diagnostics = {
            **{k: v for k, v in self.fit_diagnostics_.items() if k != "phases"},
            "phases": phases,
            "comparisons": int(n_comparisons),
            "probability_two_random_records_match": _finite(
                linker._settings_obj._probability_two_random_records_match
            ),
            "m_u": self._m_u_summary(linker),
            "blocking_rules": [
                br.blocking_rule_sql
                for br in linker._settings_obj._blocking_rules_to_generate_predictions
            ],
        }
        return MatchResult(clusters=clusters, pairs=pairs, diagnostics=diagnostics)

    def _trivial(self, ctx: MatchContext) -> MatchResult:
        """Output for fewer than two records: singletons and no pairs."""
        table = quote_ident(ctx.records)
        clusters = ctx.con.sql(f"SELECT record_id, record_id AS cluster_id FROM {table}")
        pairs = ctx.con.sql(
            f"SELECT record_id AS record_id_l, record_id AS record_id_r, 0.0::DOUBLE AS score "
            f"FROM {table} WHERE false"
        )
        return MatchResult(clusters, pairs, {**self.fit_diagnostics_, "comparisons": 0})

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
