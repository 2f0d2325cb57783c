"""The report's explanatory tables read the stored evaluation correctly."""

from __future__ import annotations

from typing import Any

from bench.report import tables as report_tables


def _rec(label: str, repeat: int = 0, b3: float = 0.5, **extra: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "repeat": repeat,
        "_label": label,
        "person": {"bcubed_f1": b3, "recall": 0.4},
        **extra,
    }


def label(r: dict[str, Any]) -> str:
    return r["_label"]


def test_stage_table_lists_only_matchers_with_candidates() -> None:
    cand = {
        "person": {
            "candidate_pairs": 1200,
            "pair_completeness": 0.9,
            "reduction_ratio": 0.99,
            "threshold": 0.5,
            "recall_lost_at_candidates": 0.1,
            "recall_lost_at_threshold": 0.05,
            "recall_gained_at_clustering": 0.02,
            "precision_lost_at_clustering": 0.01,
        }
    }
    header, rows = report_tables.stage_table(
        [_rec("splink", candidates=cand), _rec("exact")], label
    )
    assert [r[0] for r in rows] == ["splink"]
    assert rows[0][1] == "1,200"
    assert rows[0][header.index("recall lost at candidates")] == "0.100"


def test_hazard_table_puts_all_first_and_fills_missing_with_dash() -> None:
    a = [
        {"level": "person", "hazard": "typo", "records": 5, "false_merge_pairs": 3},
        {"level": "person", "hazard": "(all)", "records": 50, "false_merge_pairs": 7},
        {"level": "household", "hazard": "typo", "records": 5, "false_merge_pairs": 99},
    ]
    b = [{"level": "person", "hazard": "(all)", "records": 50, "false_merge_pairs": 1}]
    header, rows = report_tables.hazard_table([_rec("a", hazards=a), _rec("b", hazards=b)], label)
    assert header == ("hazard", "tagged records", "a", "b")
    assert rows == [("(all)", "50", "7", "1"), ("typo", "5", "3", "-")]


def test_variance_table_calls_a_difference_only_when_intervals_separate() -> None:
    recs = [_rec("good", i, b3) for i, b3 in enumerate([0.80, 0.81, 0.79])]
    recs += [_rec("bad", i, b3) for i, b3 in enumerate([0.50, 0.52, 0.51])]
    recs += [_rec("noisy", i, b3) for i, b3 in enumerate([0.2, 0.99, 0.6])]
    _header, rows = report_tables.variance_table(recs, label)
    verdict = {r[0]: r[-1] for r in rows}
    assert verdict["good"] == ""
    assert verdict["bad"] == "below good"
    assert verdict["noisy"] == "no difference"
    assert report_tables.variance_table([_rec("single")], label) is None
