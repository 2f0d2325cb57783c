"""The report's anonymous task, pairs by class and evidence ceilings, from small records.

Each test builds the few run records a table cell or a sentence depends on (as
``tests/report/test_findings.py`` does) and asserts what the report writes, including
a single-lens dataset (no segments), a record stored before the anchors' keys existed,
and the finding going either way.
"""

from __future__ import annotations

from typing import Any

from bench.report.anonymous import anonymous_table, ceiling_sentence, ceiling_table
from bench.report.findings import dataset_findings
from bench.report.records import Results
from bench.report.sections import collect_datasets, depth_section
from bench.report.segments import segment_sentence, segment_table

DS = "identity-graph-small"

CEILINGS = {
    "true_pairs": 1000,
    "direct_pairs": 240,
    "direct_share": 0.24,
    "direct_near_pairs": 210,
    "direct_near_share": 0.21,
    "closure_pairs": 560,
    "closure_share": 0.56,
    "near_days": 30,
}


def seg(p: float | None, r: float, f1: float) -> dict[str, Any]:
    """One pair class's metrics."""
    return {"precision": p, "recall": r, "f1": f1}


def run(
    name: str,
    lens: str,
    *,
    precision: float = 0.9,
    first_party_pairs: dict[str, Any] | None = None,
    anonymous_pairs: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A finished run with person metrics and, when given, pair classes (person level)."""
    rec: dict[str, Any] = {
        "run_key": f"{name}-key",
        "status": "ok",
        "dataset": {"name": DS, "fingerprint": f"fp-{DS}", "n_records": 1000},
        "matcher": {"name": name, "params": {}, "lens": lens, "tags": []},
        "person": {
            "precision": precision,
            "recall": 0.5,
            "f1": 0.6,
            "bcubed_f1": 0.6,
            "largest_cluster": 10,
            "largest_entity": 12,
        },
    }
    if first_party_pairs is not None and anonymous_pairs is not None:
        rec["segments"] = {
            "person": {
                "first_party": first_party_pairs,
                "anonymous_first_party": seg(0.8, 0.4, 0.533),
                "anonymous": anonymous_pairs,
            }
        }
    rec.update(extra)
    return rec


def label(rec: dict[str, Any]) -> str:
    return str(rec["matcher"]["name"])


def lens(rec: dict[str, Any]) -> str:
    return str(rec["matcher"]["lens"])


def both_lenses(*, det_first_party: float = 0.97, det_anon_recall: float = 0.19) -> list[dict]:
    """A deterministic, two probabilistic runs, an over-merging run and a baseline."""
    runs = (
        # name, lens, person precision, first-party pairs, anonymous pairs
        (
            "cascade-guarded",
            "deterministic",
            0.9,
            (0.99, 0.95, det_first_party),
            (0.95, det_anon_recall, 0.31),
        ),
        ("splink", "probabilistic", 0.9, (0.9, 0.8, 0.85), (0.6, 0.05, 0.09)),
        ("anonymous", "probabilistic", 0.9, (None, 0.0, 0.0), (0.51, 0.40, 0.45)),
        # over-merges (precision 0.2): never the lens's representative
        ("giant", "probabilistic", 0.2, (0.99, 0.99, 0.99), (0.2, 0.99, 0.33)),
        ("singletons", "baseline", 0.9, (None, 0.0, 0.0), (None, 0.0, 0.0)),
    )
    return [
        run(name, kind, precision=p, first_party_pairs=seg(*fp), anonymous_pairs=seg(*an))
        for name, kind, p, fp, an in runs
    ]


def findings_items(records: list[dict[str, Any]]) -> tuple[str, ...]:
    results = Results(records)
    return dataset_findings(results, collect_datasets(results)[0]).items


SEGMENTS_LINK = "[table](#pairs-by-class-identity-graph-small)"
CEILINGS_LINK = "[table](#evidence-ceilings-identity-graph-small)"


# -- anonymous table --------------------------------------------------------------------


def test_anonymous_table_shows_drawbridge_cikm_windows_and_per_identifier() -> None:
    rec = run(
        "anonymous",
        "probabilistic",
        anonymous={
            "person": {
                "drawbridge_f0_5": 0.6441,
                "devices": 1256,
                "devices_scored": 712,
                "devices_with_predicted_cookie": 1096,
                "pair_precision": 0.78,
                "pair_recall": 0.37,
                "pair_f1": 0.5058,
                "per_identifier_f0_5": 0.5627,
            }
        },
        anonymous_windows={"window_days": 30, "mean": {"drawbridge_f0_5": 0.7, "pair_f1": 0.55}},
    )
    header, rows = anonymous_table([rec], label)
    assert header[1:4] == (
        "Drawbridge F0.5",
        "devices scored / all",
        "devices with a predicted cookie",
    )
    assert header[7:] == (
        "Drawbridge F0.5, 30-day windows",
        "pair F1, 30-day windows",
        "per-identifier F0.5",
    )
    assert rows == [
        (
            "anonymous",
            "0.644",
            "712 / 1,256",
            "1,096",
            "0.780",
            "0.370",
            "0.506",
            "0.700",
            "0.550",
            "0.563",
        )
    ]


def test_anonymous_table_renders_an_old_record_without_the_new_keys() -> None:
    old = run(
        "ip-cooccurrence",
        "probabilistic",
        anonymous={
            "person": {
                "mean_f0_5": 0.5,
                "mean_f0_5_linked": 0.52,
                "pair_precision": 0.7,
                "pair_recall": 0.2,
                "pair_f1": 0.311,
            }
        },
    )
    header, rows = anonymous_table([old, run("exact", "deterministic")], label)
    # the per-identifier F0.5 is the renamed mean_f0_5; the rest did not exist
    assert rows == [
        ("ip-cooccurrence", "-", "-", "-", "0.700", "0.200", "0.311", "-", "-", "0.500")
    ]
    assert header[7] == "Drawbridge F0.5, 30-day windows"
    assert anonymous_table([run("exact", "deterministic")], label) is None


# -- pairs by class ----------------------------------------------------------------------


def test_segment_table_has_a_row_per_run_and_a_column_per_class_and_metric() -> None:
    header, rows = segment_table(both_lenses(), label)
    assert header == (
        "matcher",
        "first-party P",
        "first-party R",
        "first-party F1",
        "anonymous with first-party P",
        "anonymous with first-party R",
        "anonymous with first-party F1",
        "anonymous with anonymous P",
        "anonymous with anonymous R",
        "anonymous with anonymous F1",
    )
    by_name = {r[0]: r[1:] for r in rows}
    assert list(by_name) == ["anonymous", "cascade-guarded", "giant", "singletons", "splink"]
    assert by_name["cascade-guarded"] == (
        "0.990",
        "0.950",
        "0.970",
        "0.800",
        "0.400",
        "0.533",
        "0.950",
        "0.190",
        "0.310",
    )
    assert by_name["anonymous"][:3] == ("-", "0.000", "0.000")


def test_segment_sentence_deterministic_leads_first_party_probabilistic_adds_recall() -> None:
    text = segment_sentence(both_lenses(), DS, label, lens)
    assert text == (
        f"**Pairs by class** ({SEGMENTS_LINK}): the deterministic lens leads on first-party "
        "pairs (F1 0.970 with cascade-guarded vs 0.850 with splink); on pairs of two "
        "anonymous identifiers the probabilistic lens adds recall: 0.400 with anonymous vs "
        "0.190 with cascade-guarded (precision 0.510 vs 0.950)."
    )
    assert text in findings_items(both_lenses())


def test_segment_sentence_goes_the_other_way_when_the_numbers_do() -> None:
    records = both_lenses(det_first_party=0.7, det_anon_recall=0.6)
    hybrid = run(
        "hybrid",
        "hybrid",
        first_party_pairs=seg(0.99, 0.9, 0.943),
        anonymous_pairs=seg(0.57, 0.544, 0.557),
    )
    assert segment_sentence([*records, hybrid], DS, label, lens) == (
        f"**Pairs by class** ({SEGMENTS_LINK}): the probabilistic lens leads on first-party "
        "pairs (F1 0.850 with splink vs 0.700 with cascade-guarded); on pairs of two "
        "anonymous identifiers the deterministic lens adds recall: 0.600 with "
        "cascade-guarded vs 0.400 with anonymous (precision 0.950 vs 0.510). The hybrid "
        "lens: first-party F1 0.943 with hybrid, anonymous-pair recall 0.544 with hybrid."
    )


def test_segment_sentence_says_so_when_the_lenses_tie() -> None:
    records = both_lenses(det_first_party=0.85, det_anon_recall=0.4)
    assert segment_sentence(records, DS, label, lens) == (
        f"**Pairs by class** ({SEGMENTS_LINK}): both lenses reach F1 0.850 on first-party "
        "pairs (cascade-guarded, splink); on pairs of two anonymous identifiers neither lens "
        "adds recall (0.400 with cascade-guarded and anonymous)."
    )


def test_segment_sentence_lists_each_lens_when_one_has_no_recommendable_run() -> None:
    records = [r for r in both_lenses() if r["matcher"]["name"] in ("cascade-guarded", "giant")]
    assert segment_sentence(records, DS, label, lens) == (
        f"**Pairs by class** ({SEGMENTS_LINK}), the best run of each lens that may be "
        "recommended: first-party F1 deterministic 0.970 with cascade-guarded; "
        "anonymous-pair recall deterministic 0.190 with cascade-guarded."
    )


def test_no_segments_on_a_single_lens_dataset() -> None:
    records = [run("anonymous", "probabilistic", segments=None), run("singletons", "baseline")]
    assert segment_table(records, label) is None
    assert segment_sentence(records, DS, label, lens) is None
    assert not any(i.startswith("**Pairs by class**") for i in findings_items(records))


# -- evidence ceilings -------------------------------------------------------------------


def with_anonymous(rec: dict[str, Any], recall: float, tp: int) -> dict[str, Any]:
    rec["anonymous"] = {"person": {"pair_recall": recall, "pair_f1": 0.4, "tp_pairs": tp}}
    rec["ceilings"] = dict(CEILINGS)
    return rec


def ceiling_runs(best_recall: float = 0.4) -> list[dict[str, Any]]:
    return [
        with_anonymous(run("anonymous", "probabilistic"), best_recall, int(1000 * best_recall)),
        with_anonymous(run("cascade-guarded", "deterministic"), 0.19, 190),
        # over-merging and baseline runs are never the best
        with_anonymous(run("giant", "probabilistic", precision=0.2), 0.99, 990),
        with_anonymous(run("singletons", "baseline"), 0.0, 0),
    ]


def test_ceiling_table_sets_the_best_recall_beside_the_ip_evidence() -> None:
    header, rows = ceiling_table(ceiling_runs(), label)
    assert header == ("linked by", "true anonymous pairs", "share of true anonymous pairs")
    assert rows == [
        ("shared IP (direct)", "240", "0.240"),
        ("shared IP within 30 days", "210", "0.210"),
        ("chain of shared IPs (closure)", "560", "0.560"),
        ("anonymous (highest pair recall)", "400", "0.400"),
    ]


def test_ceiling_sentence_splits_what_is_missed_into_data_and_method() -> None:
    text = ceiling_sentence(ceiling_runs(), DS, label)
    assert text == (
        f"**Evidence ceiling** ({CEILINGS_LINK}): of the 1,000 true anonymous pairs, shared "
        "IPs link 0.240 directly, 0.210 within 30 days and 0.560 through chains of shared "
        "IPs (closure). The highest anonymous pair recall is 0.400 with anonymous: of the "
        "0.600 it misses, 0.440 no chain of shared IPs links (the data) and 0.160 is linked "
        "by one but not found (the method)."
    )
    assert text in findings_items(ceiling_runs())


def test_ceiling_sentence_when_a_run_links_beyond_the_ip_evidence() -> None:
    text = ceiling_sentence(ceiling_runs(best_recall=0.6), DS, label) or ""
    assert text.endswith(
        "The highest anonymous pair recall, 0.600 with anonymous, exceeds the closure "
        "ceiling by 0.040: it links pairs no chain of shared IPs links (through evidence "
        "other than IPs, such as logins or orders carrying a cookie)."
    )


def test_no_ceilings_in_an_old_record() -> None:
    old = run("anonymous", "probabilistic", anonymous={"person": {"pair_recall": 0.3}})
    assert ceiling_table([old], label) is None
    assert ceiling_sentence([old], DS, label) is None
    assert not any(i.startswith("**Evidence ceiling**") for i in findings_items([old]))


def test_depth_section_places_the_new_tables_under_their_headings() -> None:
    records = both_lenses()
    with_anonymous(records[0], 0.19, 190)
    results = Results(records)
    headings = [b.text for b in depth_section(results, collect_datasets(results)) if b.kind == "h3"]
    assert "Pairs by class: identity-graph-small" in headings
    assert "Evidence ceilings: identity-graph-small" in headings
    assert "Anonymous identifiers: identity-graph-small" in headings
