"""The scenarios show what they are built to show, measured through the ordinary runner."""

from __future__ import annotations

import pytest

from bench.run.runner import run_suite
from bench.run.suite import load_suite

#: generates each scenario preset.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def email_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("scenarios")
    suite = root / "suite.toml"
    suite.write_text(
        'name = "email"\nseed = 3\n'
        '[[datasets]]\nrecipe = "cdp-clean"\nsize = "tiny"\n'
        '[[datasets]]\nrecipe = "cdp-realistic"\nsize = "tiny"\n'
        '[[matchers]]\nname = "exact"\nparams = {keys = ["email"]}\n'
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # generated data goes under the temporary directory
        records = run_suite(load_suite(suite), results_root=root / "results")
    return {r["dataset"]["recipe"]["name"]: r for r in records}


def test_exact_email_is_precise_on_clean_data(email_runs: dict[str, dict]) -> None:
    clean = email_runs["cdp-clean"]
    assert clean["status"] == "ok"
    assert clean["person"]["precision"] == 1.0
    assert clean["person"]["overmerged_clusters"] == 0


def test_noise_costs_recall_and_hazards_cause_false_merges(email_runs: dict[str, dict]) -> None:
    clean, real = email_runs["cdp-clean"], email_runs["cdp-realistic"]

    # churned and typo'd e-mails split customers: the missed merges of the realistic data
    # carry those tags, and the clean data has none of them (the two presets draw
    # different worlds, so their recall is not compared directly)
    def missed(rec: dict) -> dict[str, int]:
        return {
            h["hazard"]: h["missed_merge_pairs"]
            for h in rec["hazards"]
            if h["level"] == "person" and h["hazard"] != "(all)"
        }

    assert missed(real).get("typo", 0) + missed(real).get("email_churn", 0) > 0
    assert missed(clean).get("typo", 0) + missed(clean).get("email_churn", 0) == 0
    # shared family e-mails and junk addresses put different persons into one cluster
    assert real["person"]["overmerged_clusters"] > 0
    assert real["person"]["precision"] < 1.0
    false_merges = {
        h["hazard"]: h["false_merge_pairs"]
        for h in real["hazards"]
        if h["level"] == "person" and h["hazard"] != "(all)"
    }
    explained = false_merges.get("shared_family_email", 0) + false_merges.get("junk_identifier", 0)
    assert explained > 0
