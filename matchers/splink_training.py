"""Training a Splink linker as the adapter's plan says, and reading the trained model back.

The plan (:meth:`matchers.splink_matcher.SplinkMatcher.plan`) lists the training calls;
this module runs the two that need care: the prior from near-certain rules
(:func:`estimate_prior`: a failed or degenerate estimate keeps the default) and the EM
sessions (:func:`train_em`: a failed session is rolled back and skipped). The adapter
reports the trained m and u through :func:`m_u_summary`.

Two choices here keep the model the same as the data grows:

- **The u sample is sized to the data** (:func:`u_sample_pairs`): Splink estimates u
  from the cross product of a random record sample of ``max_pairs`` pairs, and its docs
  warn that the default 1e6 is too small (1e7 "often adequate", 1e8-1e9 best). Sparse
  columns make it worse: only pairs where both records hold a value count, so with a
  date of birth on one profile in six, 1e6 pairs hold ~28k usable pairs and the exact
  level (true u ~5e-5) is seen about once. The sample is ``u_pairs_per_profile`` pairs
  per profile (never fewer than the floor), so each level keeps its counts as the
  profile count grows.
- **A level no training observed gets an explicit fallback** (:func:`fill_untrained_levels`)
  instead of Splink's silent default: an m never observed by EM takes Splink's
  starting m for the level (0.95 for the exact level of a two-level comparison); a u
  never observed in the sample takes ``1 / (present pairs + 1)``, the value one more
  sampled pair would have given (present pairs: the sampled pairs expected to hold a
  value on both sides). Splink's own default u for an exact level is m / 2^10, which
  for an identifier (true u ~1e-6) understates the evidence of a shared token a
  thousand-fold and for a date of birth overstates it. Every fallback is listed in the
  diagnostics (``untrained_levels``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from splink import Linker, block_on
from splink.internals.exceptions import EMTrainingException

from bench.api import MatchContext, query, quote_ident
from matchers.splink_budget import quiet_sampled_counts, result_df_guard

__all__ = [
    "estimate_prior",
    "fill_untrained_levels",
    "finite_or_none",
    "m_u_summary",
    "train_em",
    "u_sample_pairs",
]

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


def u_sample_pairs(n: int, floor: int, per_profile: float | None) -> int:
    """Random pairs for Splink's u estimation on ``n`` profiles (its ``max_pairs``).

    ``per_profile`` pairs per profile, never fewer than ``floor`` (the ``u_max_pairs``
    of the matcher); ``None`` gives the floor alone (Splink's fixed ``max_pairs``).
    Splink samples all pairs when there are fewer.
    """
    return int(floor if per_profile is None else max(floor, round(per_profile * n)))


def _present_pairs(ctx: MatchContext, comparisons: Sequence[Any], u_pairs: int) -> dict[str, float]:
    """Pairs of the u sample expected to hold every input column of each comparison.

    The sample is ``u_pairs`` random pairs (all pairs when there are fewer); a pair
    counts for a comparison when both records hold its columns (one scan for all).
    """
    n = query(
        ctx.engine, f"SELECT count(*) AS n FROM {quote_ident(ctx.records)}", step="count"
    ).to_pylist()[0]["n"]
    if not n or not comparisons:
        return {c.output_column_name: 0.0 for c in comparisons}
    pairs = min(u_pairs, n * (n - 1) // 2)
    exprs = []
    for i, comparison in enumerate(comparisons):
        cols = [c.unquote().name for c in comparison._input_columns_used_by_case_statement]
        cond = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in cols) or "true"
        exprs.append(f"count(*) FILTER (WHERE {cond}) AS c{i}")
    row = query(
        ctx.engine,
        f"SELECT {', '.join(exprs)} FROM {quote_ident(ctx.records)}",
        step="splink: present shares",
    ).to_pylist()[0]
    return {
        c.output_column_name: pairs * (row[f"c{i}"] / n) ** 2 for i, c in enumerate(comparisons)
    }


def fill_untrained_levels(
    ctx: MatchContext, linker: Linker, u_pairs: int | None
) -> list[dict[str, Any]]:
    """Give every level that training left without m or u an explicit fallback.

    Parameters
    ----------
    ctx
        The context Splink trained on (its records are the profiles).
    linker
        The trained linker; its model is edited in place.
    u_pairs
        Pairs of the u sample (:func:`u_sample_pairs`); ``None`` when u was not
        estimated here (a given model), so no u fallback is computed from a sample.

    Returns
    -------
    list of dict
        One entry per value filled: ``comparison``, ``level``, ``parameter`` (``"m"``
        or ``"u"``), ``value`` and ``fallback`` (how it was chosen).
    """
    comparisons = list(linker._settings_obj.comparisons)
    present_pairs = _present_pairs(ctx, comparisons, u_pairs) if u_pairs is not None else {}
    filled: list[dict[str, Any]] = []
    for comparison in comparisons:
        name = comparison.output_column_name
        for level in comparison._comparison_levels_excluding_null:
            entry = {"comparison": name, "level": level.label_for_charts}
            if not level._m_is_trained and level.default_m_probability is not None:
                level.m_probability = level.default_m_probability
                filled.append(
                    {
                        **entry,
                        "parameter": "m",
                        "value": level.m_probability,
                        "fallback": "not observed by EM: Splink's starting m of the level",
                    }
                )
            if not level._u_is_trained and u_pairs is not None:
                present = present_pairs.get(name, 0.0)
                level.u_probability = min(1.0, 1.0 / (present + 1.0))
                filled.append(
                    {
                        **entry,
                        "parameter": "u",
                        "value": level.u_probability,
                        "fallback": f"not in ~{present:,.0f} sampled pairs with values: "
                        "1 / (pairs + 1)",
                    }
                )
    if filled:
        log.info("splink: %d untrained m/u values given fallbacks", len(filled))
    return filled
