"""Training a Splink linker as the adapter's plan says, and reading the trained model back.

The plan (:meth:`matchers.splink_matcher.SplinkMatcher.plan`) lists the training calls;
this module runs the two that need care: the prior from near-certain rules
(:func:`estimate_prior`: a failed or degenerate estimate keeps the default) and the EM
sessions (:func:`train_em`: a failed session is rolled back and skipped). The adapter
reports the trained m and u through :func:`m_u_summary`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from splink import Linker, block_on
from splink.internals.exceptions import EMTrainingException

from bench.api import MatchContext
from matchers.splink_budget import quiet_sampled_counts, result_df_guard

__all__ = ["estimate_prior", "finite_or_none", "m_u_summary", "train_em"]

log = logging.getLogger(__name__)


def _rule(rule: str | Sequence[str]) -> Any:
    """A training rule given as SQL text or as a list of columns to block on."""
    return rule if isinstance(rule, str) else block_on(*rule)


def finite_or_none(x: Any) -> float | None:
    """``x`` as a float when it is a finite number, else ``None`` (JSON-able)."""
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def estimate_prior(ctx: MatchContext, linker: Linker, prior: dict[str, Any]) -> None:
    """Estimate the prior match probability from near-certain rules."""
    with result_df_guard(ctx) as free:
        if not free:
            log.warning("splink: a table named result_df exists; keeping the default prior")
            return
        model = linker._settings_obj.core_model_settings
        before = model.probability_two_random_records_match
        try:
            with quiet_sampled_counts():
                linker.training.estimate_probability_two_random_records_match(
                    [block_on(*r) for r in prior["deterministic_matching_rules"]],
                    recall=prior["recall"],
                    record_sample_proportion=prior["record_sample_proportion"],
                )
        except ValueError as exc:
            # e.g. the rules find fewer pairs than the assumed recall allows
            linker._settings_obj.core_model_settings.probability_two_random_records_match = before
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


def _em_sampling_info(session: Any) -> dict[str, Any]:
    """What Splink's EM sampling decided for one session (JSON-able)."""
    info = getattr(session, "_sample_info", None)
    if not isinstance(info, Mapping):
        return {}
    keep = ("estimated_total_pairs", "sampling_applied", "expected_pairs_after_sampling")
    return {k: info.get(k) for k in keep if k in info}


def train_em(
    linker: Linker, sessions: list[dict[str, Any]]
) -> tuple[list[Any], list[Any], list[dict[str, Any]]]:
    """Run the EM sessions of the plan in order.

    Returns
    -------
    tuple
        The blocking rules of the sessions that trained, of those skipped (a failure
        leaves the model as it was), and the sampling info of each trained session.
    """
    training: list[Any] = []
    em_skipped: list[Any] = []
    em_sampling: list[dict[str, Any]] = []
    for step in sessions:
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
    return training, em_skipped, em_sampling


def m_u_summary(linker: Linker) -> dict[str, list[dict[str, Any]]]:
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
                    "m": finite_or_none(level.get("m_probability")),
                    "u": finite_or_none(level.get("u_probability")),
                }
            )
        summary[comparison.get("output_column_name", "?")] = levels
    return summary
