"""Splink at scale, in miniature: the cluster-size guard and the fallbacks of untrained levels.

At 3M records a few over-confident links chained 13,326 records of one city into one
cluster, and levels that no training observed were left to Splink's silent defaults.
These constructed cases show both handled, with their diagnostics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

from bench.api import MatchContext
from bench.sql import engine
from matchers.splink_matcher import SplinkMatcher
from matchers.splink_training import u_sample_pairs

#: Splink fits (seconds each).
pytestmark = pytest.mark.slow


def _context(records: pd.DataFrame) -> MatchContext:
    con = engine.connect(threads=2)
    con.register("__input", records)
    engine.execute(con, "CREATE TABLE records AS SELECT * FROM __input")
    con.unregister("__input")
    return MatchContext(con=con, records="records", seed=7, threads=2)


def _clusters(matcher: SplinkMatcher, records: pd.DataFrame) -> tuple[pd.Series, dict[str, Any]]:
    ctx = _context(records)
    res = matcher.fit(ctx).match(ctx)
    clusters = res.clusters.df()
    assert len(clusters) == len(records)  # every record exactly once
    return clusters.set_index("record_id").cluster_id, res.diagnostics


def _chain(persons: int) -> pd.DataFrame:
    """Two records per person (same e-mail and phone); a card token links neighbours.

    Record ``b`` of person ``k`` and record ``a`` of person ``k + 1`` share card ``c{k}``:
    one link per step, so connected components make one cluster of everybody.
    """
    rows = []
    for k in range(persons):
        card_a = f"c{k - 1}" if k else None
        rows.append((2 * k, f"e{k}@x.org", f"0301234{k:04d}", card_a))
        rows.append((2 * k + 1, f"e{k}@x.org", f"0301234{k:04d}", f"c{k}"))
    return pd.DataFrame(rows, columns=["record_id", "email", "phone", "card_token"])


def _model(weights: dict[str, tuple[float, float]], prior: float) -> dict[str, Any]:
    """A trained two-level model: ``column -> (m, u)`` of its exact level."""
    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[cl.ExactMatch(c) for c in weights],
        blocking_rules_to_generate_predictions=[block_on(c) for c in weights],
        probability_two_random_records_match=prior,
    )
    settings = creator.create_settings_dict("duckdb")
    for comparison in settings["comparisons"]:
        m, u = weights[comparison["output_column_name"]]
        exact, other = (lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level"))
        exact.update(m_probability=m, u_probability=u)
        other.update(m_probability=1 - m, u_probability=1 - u)
    return settings


def test_a_chain_of_card_links_is_cut_back_to_the_persons() -> None:
    # A shared card is strong evidence (+~24 bits) against one disagreeing e-mail and
    # phone (-~4 each) and the prior (-~10): every chain link scores ~0.998, above the
    # threshold, while a true pair (e-mail and phone agree) scores ~1 - 1e-9.
    settings = _model(
        {"email": (0.9, 1e-5), "phone": (0.9, 1e-5), "card_token": (0.95, 5e-8)}, prior=1e-3
    )
    records = _chain(60)
    plain = SplinkMatcher(settings=settings, collapse_identical=False, max_cluster_profiles=None)
    cid, diag = _clusters(plain, records)
    assert cid.value_counts().max() == 120  # the whole chain is one "person"
    assert diag["cluster_guard"]["guard_fired"] is False

    guarded = SplinkMatcher(settings=settings, collapse_identical=False, max_cluster_profiles=10)
    cid, diag = _clusters(guarded, records)
    sizes = cid.value_counts()
    assert (sizes == 2).all() and len(sizes) == 60
    pairs = cid.groupby(cid).apply(lambda s: sorted(s.index)).tolist()
    assert sorted(pairs) == [[2 * k, 2 * k + 1] for k in range(60)]
    guard = diag["cluster_guard"]
    assert guard["guard_fired"] is True
    assert guard["max_cluster_profiles"] == 10
    assert len(guard["thresholds"]) == 2 and guard["thresholds"][1] > 0.999
    assert guard["nodes_left_single"] == 0
    # the scored pairs are unchanged: the chain links are still reported with their score
    assert diag["comparisons"] == 60 + 59


def _people(persons: int, seed: int = 3) -> pd.DataFrame:
    """Two records per person on names and e-mail; a few carry a unique loyalty id."""
    rng = np.random.default_rng(seed)
    given = rng.choice([f"g{i}" for i in range(40)], persons)
    family = rng.choice([f"f{i}" for i in range(60)], persons)
    rows = []
    for k in range(persons):
        typo = f"{family[k]}x" if k % 3 == 0 else family[k]
        loyalty = f"L{k}" if k % 10 == 0 else None  # on one record of the person only
        rows.append((2 * k, given[k], family[k], f"p{k}@x.org", loyalty))
        rows.append((2 * k + 1, given[k], typo, f"p{k}@x.org" if k % 2 else None, None))
    return pd.DataFrame(
        rows, columns=["record_id", "given_name", "family_name", "email", "loyalty_id"]
    )


def test_levels_no_training_observed_get_an_explicit_fallback() -> None:
    # Every loyalty id is unique, so no sampled pair and no EM pair agrees on it: Splink
    # would leave the exact level's m and u empty and predict with its defaults.
    records = _people(300)
    matcher = SplinkMatcher(collapse_identical=False, u_max_pairs=20_000, u_pairs_per_profile=100)
    cid, diag = _clusters(matcher, records)
    n = len(records)
    u_pairs = u_sample_pairs(n, 20_000, 100)
    assert diag["u_sample"]["max_pairs"] == u_pairs == 60_000
    filled = {(e["comparison"], e["level"], e["parameter"]): e for e in diag["untrained_levels"]}
    exact_u = filled[("loyalty_id", "Exact match on loyalty_id", "u")]
    share = records.loyalty_id.notna().mean()
    assert u_pairs < n * (n - 1) // 2  # a sample, not all pairs
    assert exact_u["value"] == pytest.approx(1 / (u_pairs * share**2 + 1))
    assert "1 / (pairs + 1)" in exact_u["fallback"]
    exact_m = filled[("loyalty_id", "Exact match on loyalty_id", "m")]
    assert exact_m["value"] == pytest.approx(0.95)  # Splink's starting m of an exact level
    # the model reports the filled values: no level is left without m or u
    levels = [lv for comparison in diag["m_u"].values() for lv in comparison]
    assert all(lv["m"] is not None and lv["u"] is not None for lv in levels)
    # and the clusters stay persons-sized
    assert cid.value_counts().max() <= 2
    assert diag["cluster_guard"]["guard_fired"] is False
