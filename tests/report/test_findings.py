"""Every generated sentence is checked against small result sets built here as dicts.

Each test builds the few run records a claim depends on (like
``tests/fixtures/results/make_fixture.py`` does, but inline) and asserts the sentence the
report writes: who is best, who over-merges, which hazard leads, what moved, including
the "no change", "all equal" and "empty" cases.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pytest

from bench.report.document import Block, anchor, link, to_html, to_markdown
from bench.report.figures.axes import overlap_sizes
from bench.report.figures.drawing import Drawing
from bench.report.figures.monthly import fig_monthly
from bench.report.figures.pareto import fig_pareto
from bench.report.figures.precision_recall import fig_precision_recall, threshold_point
from bench.report.findings import dataset_findings
from bench.report.records import Results
from bench.report.results_section import results_section
from bench.report.sections import collect_datasets
from bench.report.tables import hazard_caption, signed, stage_table
from bench.report.verdict import (
    OVERMERGE_LARGEST_FACTOR,
    OVERMERGE_MIN_PRECISION,
    contenders,
    is_baseline,
    overmerge_reason,
)

DS = "cdp-realistic-small"


def run(
    name: str,
    lens: str,
    *,
    precision: float | None = 0.9,
    recall: float = 0.5,
    bcubed: float = 0.6,
    largest: int = 30,
    true_largest: int = 35,
    rps: float = 10_000.0,
    status: str = "ok",
    dataset: str = DS,
    params: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One stored run record with the fields the report reads."""
    f1 = 0.0 if not precision else 2 * precision * recall / (precision + recall)
    rec: dict[str, Any] = {
        "run_key": f"{dataset}-{name}-{params}",
        "run_id": f"id-{dataset}-{name}-{params}",
        "status": status,
        "suite": "t",
        "dataset": {"name": dataset, "fingerprint": f"fp-{dataset}", "n_records": 1000},
        "matcher": {"name": name, "params": params or {}, "lens": lens, "tags": []},
        "error": extra.pop("error", None),
    }
    if status == "ok":
        rec["person"] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "bcubed_f1": bcubed,
            "largest_cluster": largest,
            "largest_entity": true_largest,
            "n_clusters": 500,
            "n_entities": 400,
        }
        rec["throughput"] = {"records_per_s": rps}
    rec.update(extra)
    return rec


def cdp_like() -> list[dict[str, Any]]:
    """The shape of the real cdp-realistic results that misled a reader."""
    return [
        run("cascade", "deterministic", precision=0.096, recall=0.395, bcubed=0.631, largest=1709),
        run("cascade-guarded", "deterministic", precision=0.996, recall=0.366, bcubed=0.614),
        run("splink", "probabilistic", precision=0.910, recall=0.529, bcubed=0.758, rps=9_000),
        run("singletons", "baseline", precision=None, recall=0.0, bcubed=0.304, rps=1.2e7),
        run(
            "anonymous",
            "probabilistic",
            status="skipped",
            error="matcher does not apply to this dataset: dataset lacks auxiliary table(s) ip.",
        ),
    ]


def findings(records: list[dict[str, Any]]) -> Block:
    results = Results(records)
    return dataset_findings(results, collect_datasets(results)[0])


def closed(drawn: Any) -> Drawing:
    assert isinstance(drawn, Drawing), drawn
    plt.close(drawn.fig)
    return drawn


# --- the over-merge rule ---------------------------------------------------------------


def test_overmerge_rule_is_its_named_constants() -> None:
    at = run("x", "deterministic", precision=OVERMERGE_MIN_PRECISION)
    below = run("x", "deterministic", precision=OVERMERGE_MIN_PRECISION - 0.01)
    assert overmerge_reason(at) is None
    assert overmerge_reason(below) == "pairwise precision 0.490 < 0.5"
    edge = int(OVERMERGE_LARGEST_FACTOR * 35)
    assert overmerge_reason(run("x", "deterministic", largest=edge)) is None
    assert overmerge_reason(run("x", "deterministic", largest=edge + 1)) == (
        "largest cluster 351 records vs 35 in the largest true person"
    )
    assert contenders(cdp_like()) == [cdp_like()[1], cdp_like()[2]]


def test_an_overmerging_matcher_is_never_recommended() -> None:
    block = findings(cdp_like())
    text = " ".join(block.items)
    assert "**Deterministic**: best is **cascade-guarded** (pairwise F1 0.535)" in text
    assert "best is **cascade**" not in text
    assert (
        "**Over-merges, not recommended**: **cascade** (pairwise precision 0.096 < 0.5; "
        "largest cluster 1,709 records vs 35 in the largest true person)."
    ) in block.items
    # its B-cubed F1 is below splink's: the report does not claim it hides anything
    assert "above every run" not in text


def test_overmerging_run_with_the_top_bcubed_is_called_out() -> None:
    recs = cdp_like()
    recs[0]["person"]["bcubed_f1"] = 0.9
    text = " ".join(findings(recs).items)
    assert "its B-cubed F1 0.900 is above every run that does not over-merge" in text


def test_results_table_ranks_and_flags_overmerging_runs() -> None:
    results = Results(cdp_like())
    table = next(b for b in results_section(results, collect_datasets(results)) if b.rows)
    rows = [(r[0], r[2], r[3]) for r in table.rows]
    assert rows == [
        ("splink", "ok", ""),
        ("cascade-guarded", "ok", ""),
        ("cascade", "ok", "over-merges"),
        ("singletons", "ok", "baseline"),
        ("anonymous", "skipped", ""),
    ]
    largest = table.header.index("largest cluster / true")
    assert table.rows[2][largest] == "1,709 / 35"


def test_pareto_frontier_and_winners_leave_out_overmerging_and_baselines() -> None:
    drawn = closed(fig_pareto(Results(cdp_like())))
    assert drawn.title == f"Quality vs throughput: {DS}"
    assert "the fastest is cascade-guarded" in drawn.caption
    assert "singletons at" not in drawn.caption
    assert "Red rings mark runs that over-merge" in drawn.caption
    assert "): cascade; their B-cubed F1 overstates them." in drawn.caption
    assert "Baselines (reference points, not candidates): singletons." in drawn.caption
    assert drawn.data["overmerging_run_keys"] == [cdp_like()[0]["run_key"]]
    frontier = drawn.data["frontier_run_keys"]
    assert cdp_like()[0]["run_key"] not in frontier
    assert cdp_like()[3]["run_key"] not in frontier


# --- findings per lens -----------------------------------------------------------------


def test_lead_compares_the_two_lenses() -> None:
    assert findings(cdp_like()).text == (
        f"On {DS} (1,000 records) the probabilistic lens finds more true pairs than the "
        "deterministic (recall 0.529 with splink vs 0.366 with cascade-guarded) at lower "
        "precision (0.910 vs 0.996)."
    )


def test_lead_says_when_both_lenses_are_equal() -> None:
    recs = [
        run("exact", "deterministic", precision=0.9, recall=0.5),
        run("splink", "probabilistic", precision=0.9, recall=0.5),
    ]
    assert "finds as many true pairs than" not in findings(recs).text
    assert "finds as many true pairs as the deterministic" in findings(recs).text
    assert "at the same precision (0.900 vs 0.900)" in findings(recs).text


def test_lead_says_why_a_lens_is_missing() -> None:
    recs = [run("exact", "deterministic", recall=0.4), cdp_like()[4]]
    assert findings(recs).text == (
        f"On {DS} (1,000 records) the probabilistic lens does not apply (skipped). "
        "The best run is exact (deterministic: recall 0.400, precision 0.900)."
    )
    none_link = [run("exact", "deterministic", precision=None, recall=0.0)]
    assert findings(none_link).text == (
        f"On {DS} (1,000 records) no matcher that does not over-merge links a true "
        "same-person pair."
    )
    assert (
        findings(none_link)
        .items[0]
        .startswith(
            "**Deterministic**: no run links a single true same-person pair (exact: recall 0;"
        )
    )


def test_best_sentence_names_reach_precision_cluster_cost_and_failure() -> None:
    hazards = [
        {"level": "person", "hazard": "(all)", "missed_merge_pairs": 500},
        {"level": "person", "hazard": "email_churn", "missed_merge_pairs": 120},
        {"level": "person", "hazard": "typo", "missed_merge_pairs": 30},
    ]
    business = {"person": {"entity_count_inflation": 2.03}}
    recs = [run("splink", "probabilistic", hazards=hazards, business=business)]
    item = findings(recs).items[0]
    assert item == (
        "**Probabilistic**: best is **splink** (pairwise F1 0.643): it finds 50% of the true "
        "same-person pairs at precision 0.900; its largest cluster holds 30 records (largest "
        "true person: 35); customer count 2.03x the true count "
        f"([results](#results-{DS}-1000-records)). It misses most where records carry "
        f"`email_churn` (120 missed pairs, [missed merges](#missed-merges-by-hazard-{DS})) "
        "and runs at 10,000 records/s."
    )


def test_baselines_and_skipped_matchers_are_named_as_such() -> None:
    recs = [*cdp_like(), run("exact", "deterministic", bcubed=0.2)]
    items = findings(recs).items
    assert (
        "**Baseline** (resolves nothing on purpose, never recommended): singletons "
        "(B-cubed F1 0.304). Below it on B-cubed F1: exact."
    ) in items
    assert "**Not applicable**: anonymous: dataset lacks auxiliary table(s) ip." in items
    assert all("best is **singletons**" not in i for i in items)


def test_a_supervised_run_is_best_only_when_alone() -> None:
    supervised = run("anon-sup", "probabilistic", recall=0.9, training={"persons": 10})
    plain = run("anon", "probabilistic", recall=0.3)
    assert "best is **anon**" in findings([supervised, plain]).items[0]
    alone = findings([supervised]).items[0]
    assert "best is **anon-sup**" in alone
    assert alone.endswith("(scored on the persons it did not learn from).")


def test_every_lens_failing_or_overmerging_is_said() -> None:
    failed = [run("splink", "probabilistic", status="error", error="boom")]
    assert findings(failed).items == (
        "**Probabilistic**: every run failed ([failed runs](#failed-runs)).",
    )
    bad = [run("cascade", "deterministic", precision=0.1)]
    assert findings(bad).items[0] == (
        "**Deterministic**: every run over-merges (cascade): none is recommended."
    )


# --- hazard captions -------------------------------------------------------------------


def _hz(name: str, missed: int, false: int = 0) -> dict[str, Any]:
    return {
        "level": "person",
        "hazard": name,
        "missed_merge_pairs": missed,
        "false_merge_pairs": false,
        "records": 10,
    }


def test_missed_merges_caption_names_the_leading_tag_per_matcher() -> None:
    recs = [
        run("exact", "deterministic", hazards=[_hz("email_churn", 50), _hz("typo", 10)]),
        run("splink", "probabilistic", hazards=[_hz("email_churn", 5), _hz("typo", 10)]),
        run("singletons", "baseline", hazards=[_hz("itp_cookie_reset", 900)]),
    ]
    label = Results(recs).label
    text = hazard_caption(recs, label, kind="missed_merge_pairs", skip=is_baseline)
    assert text.endswith(
        "The tag with most missed merges: `email_churn` for exact; `typo` for splink."
    )
    assert "itp_cookie_reset" not in text  # the baseline is not summarised
    one = hazard_caption(recs[:1] + recs[2:], label, kind="missed_merge_pairs", skip=is_baseline)
    assert one.endswith(
        "The tag with most missed merges is `email_churn` for every matcher but the baselines."
    )
    none = hazard_caption(recs[:2], label, kind="false_merge_pairs", skip=is_baseline)
    assert none.endswith("No tagged false merges for exact, splink.")
    assert hazard_caption([], label, kind="false_merge_pairs").startswith("Record pairs put")


# --- monthly trend ---------------------------------------------------------------------


def _months(*f1: float) -> list[dict[str, Any]]:
    return [
        {"level": "person", "month": f"2024-{i + 1:02d}", "precision": 0.9, "recall": 0.5, "f1": v}
        for i, v in enumerate(f1)
    ]


def test_monthly_caption_says_who_moves_and_who_holds() -> None:
    recs = [
        run("exact", "deterministic", monthly=_months(0.257, 0.254)),
        run("splink", "probabilistic", monthly=_months(0.50, 0.40)),
        run("singletons", "baseline", monthly=_months(0.0, 0.0)),
    ]
    caption = closed(fig_monthly(Results(recs))).caption
    assert caption.endswith(
        " F1 of splink falls most, from 0.500 in the first month to 0.400 in the last. "
        "Unchanged (within 0.005): exact. In the last month the best F1 is splink's (0.400)."
    )
    assert "singletons" not in caption


def test_monthly_caption_when_nothing_changes_or_one_month() -> None:
    same = [
        run("exact", "deterministic", monthly=_months(0.3, 0.3)),
        run("splink", "probabilistic", monthly=_months(0.6, 0.601)),
    ]
    assert closed(fig_monthly(Results(same))).caption.endswith(
        " F1 of every matcher stays within 0.005 between the first and the last month. "
        "In the last month the best F1 is splink's (0.601)."
    )
    one = [run("exact", "deterministic", monthly=_months(0.3))]
    assert closed(fig_monthly(Results(one))).caption.endswith("scored against their whole person.")


# --- precision-recall: the run's own operating point -----------------------------------


def test_curve_and_final_point_are_joined_and_told_apart() -> None:
    curve = [
        {"level": "person", "threshold": t, "precision": p, "recall": r}
        for t, p, r in ((1.0, 1.0, 0.10), (0.9, 0.956, 0.191), (0.5, 0.6, 0.221))
    ]
    stages = [{"stage": "threshold", "precision": 0.956, "recall": 0.191}]
    splink = run(
        "splink",
        "probabilistic",
        precision=0.910,
        recall=0.529,
        curves=curve,
        candidates={"person": {"stages": stages}},
    )
    splink["matcher"]["threshold"] = 0.9
    assert threshold_point(splink) == (0.191, 0.956)
    del splink["candidates"]
    assert threshold_point(splink) == (0.191, 0.956)  # read off the curve at 0.9
    drawn = closed(fig_precision_recall(Results([splink, cdp_like()[1]])))
    assert drawn.data["threshold_points"] == {"splink": (0.191, 0.956)}
    assert (
        "splink from recall 0.191 / precision 0.956 at its threshold to 0.529 / 0.910 after "
        "clustering."
    ) in drawn.caption
    on_curve = run("rl", "probabilistic", precision=0.956, recall=0.191, curves=curve)
    on_curve["matcher"]["threshold"] = 0.9
    drawn = closed(fig_precision_recall(Results([on_curve])))
    assert drawn.data["threshold_points"] == {}
    assert "arrow" not in drawn.caption


def test_coinciding_markers_get_distinct_sizes() -> None:
    sizes = overlap_sizes([(0.366, 0.996), (0.3661, 0.9959), (0.529, 0.91)])
    assert sizes[0] > sizes[1] and sizes[2] == sizes[1]
    assert overlap_sizes([]) == []
    assert overlap_sizes([(1.0, 1.0)]) == [55.0]


# --- stage table: a change, with its sign ----------------------------------------------


def test_stage_table_shows_changes_with_their_sign() -> None:
    cand = {
        "candidate_pairs": 10,
        "pair_completeness": 0.2,
        "reduction_ratio": 0.9,
        "threshold": 0.5,
        "recall_lost_at_candidates": 0.8,
        "recall_lost_at_threshold": 0.01,
        "recall_gained_at_clustering": 0.338,
        "precision_lost_at_clustering": -0.096,
    }
    recs = [run("hybrid", "hybrid", candidates={"person": cand})]
    header, rows = stage_table(recs, Results(recs).label) or ((), [])
    got = dict(zip(header, rows[0], strict=True))
    assert got["precision change at clustering"] == "+0.096"
    assert got["recall change at clustering"] == "+0.338"
    assert [signed(v) for v in (None, -0.0001, 0.0, -0.021)] == ["-", "0.000", "0.000", "-0.021"]


# --- the document: anchors, links, contents, scrolling tables --------------------------


def test_links_point_at_headings_in_both_documents() -> None:
    heading = "Results: cdp-realistic-small (100,310 records)"
    assert anchor(heading) == "results-cdp-realistic-small-100310-records"
    blocks = [
        Block("h1", "T"),
        Block("h2", "Findings"),
        Block("findings", "lead", items=(f"see {link('results', heading)}",)),
        Block("h2", "Results"),
        Block("h3", heading),
        Block("table", header=("matcher", "F1"), align=("l", "r"), rows=(("a", "0.5"),)),
    ]
    md = to_markdown(blocks)
    assert "Contents: [Findings](#findings) · [Results](#results)" in md
    assert f"- see [results](#{anchor(heading)})" in md
    page = to_html(blocks, "T")
    assert f'<h3 id="{anchor(heading)}">' in page
    assert f'<a href="#{anchor(heading)}">results</a>' in page
    assert '<div class="table-wrap"><table>' in page
    assert '<td class="r">0.5</td>' in page
    assert page.index('<nav class="toc">') < page.index('<h2 id="findings">')


@pytest.mark.parametrize("records", [[], [run("exact", "deterministic", status="error")]])
def test_findings_of_nothing_usable(records: list[dict[str, Any]]) -> None:
    if not records:
        assert collect_datasets(Results(records)) == []
        return
    block = findings(records)
    assert block.text.endswith("no matcher that does not over-merge links a true same-person pair.")
