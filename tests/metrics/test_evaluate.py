"""Tests of the error-explaining metrics of bench.metrics.evaluate against hand-computed values.

One small hand-made run (``hand_run``) is checked key by key with the arithmetic in
comments; the threshold sweep, hazard attribution and anonymous metrics are also checked
against brute-force pair enumeration in Python on random small cases (hypothesis).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data.dataset import Dataset, write_manifest
from bench.metrics import core as metrics
from bench.metrics.anonymous import anonymous_metrics
from bench.metrics.evaluate import RECORD_KEYS, evaluate_run
from bench.metrics.hazards import hazard_metrics
from bench.metrics.pairs import (
    build_score_table,
    cost_thresholds,
    curve,
    threshold_summary,
)
from bench.metrics.tables import LEVELS, build_base, build_levels
from bench.sql import engine

BIG = 10**12


def rid(i: int) -> int:
    """Record ids far beyond 32 bits and not contiguous."""
    return BIG + 7919 * i


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def write_dataset(
    root: Path,
    rows: Sequence[dict[str, Any]],
    *,
    hazards: Sequence[tuple[int, str]] | None = None,
) -> Dataset:
    """A dataset directory from rows with record_id, person, household, source, amount, ts."""
    (root / "truth").mkdir(parents=True, exist_ok=True)
    ids = pa.array([r["record_id"] for r in rows], pa.int64())
    pq.write_table(
        pa.table(
            {
                "record_id": ids,
                "source": [r.get("source", "crm") for r in rows],
                "amount": pa.array([r.get("amount") for r in rows], pa.float64()),
                "ts": pa.array([r.get("ts") for r in rows], pa.timestamp("us")),
            }
        ),
        root / "records.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "record_id": ids,
                "person_id": pa.array([r["person"] for r in rows], pa.int64()),
                "household_id": pa.array([r.get("household") for r in rows], pa.int64()),
            }
        ),
        root / "truth" / "records.parquet",
    )
    if hazards is not None:
        pq.write_table(
            pa.table(
                {
                    "record_id": pa.array([h[0] for h in hazards], pa.int64()),
                    "hazard": pa.array([h[1] for h in hazards], pa.string()),
                }
            ),
            root / "truth" / "hazards.parquet",
        )
    write_manifest(
        root,
        name="hand",
        kind="test",
        recipe={},
        seed=None,
        generator={"name": "tests", "version": "1"},
    )
    return Dataset.open(root)


def write_raw(
    raw: Path, clusters: dict[int, Any], pairs: Sequence[tuple[int, int, float]] | None
) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"record_id": list(clusters), "cluster_id": list(clusters.values())}),
        raw / "clusters.parquet",
    )
    if pairs is not None:
        pq.write_table(
            pa.table(
                {
                    "record_id_l": pa.array([p[0] for p in pairs], pa.int64()),
                    "record_id_r": pa.array([p[1] for p in pairs], pa.int64()),
                    "score": pa.array([p[2] for p in pairs], pa.float64()),
                }
            ),
            raw / "pairs.parquet",
        )
    return raw


# --- the hand-made run ----------------------------------------------------------------
#
# persons  A(1) = {r1, r2, r3}, B(2) = {r4, r5}, C(3) = {r6}, D(4) = {r7, r8}
# households H1 = A + B, H2 = C, H3 = D
# clusters k1 = {r1, r2, r4}, k2 = {r3}, k3 = {r5, r6}, k4 = {r7, r8}
# cells    (k1,A)=2 (k1,B)=1 (k2,A)=1 (k3,B)=1 (k3,C)=1 (k4,D)=2
# person pairs: true = A 3 + B 1 + D 1 = 5; predicted = k1 3 + k3 1 + k4 1 = 5;
#   tp = (k1,A) 1 + (k4,D) 1 = 2; fp = 3 {r1r4, r2r4, r5r6}; fn = 3 {r1r3, r2r3, r4r5}
# scored pairs (the clusters are their closure at threshold 0.5):
#   r1r2 0.9 T, r1r4 0.8 F, r7r8 0.7 T, r5r6 0.6 F, r2r3 0.4 T, r4r5 0.3 T
# sources: r3, r5 maid; r6, r7, r8 cookie; others crm
# amounts: r1 100, r2 50, r3 10, r4 500, r5 20, r6 30, r7 5, r8 none
# months: r1 r2 r4 r7 January; r3 r5 r6 February; r8 no ts

PERSON = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2, 6: 3, 7: 4, 8: 4}
HOUSEHOLD = {1: 1, 2: 2, 3: 3, 4: 4}  # person -> household (A and B share H1 below)
CLUSTER = {1: "k1", 2: "k1", 3: "k2", 4: "k1", 5: "k3", 6: "k3", 7: "k4", 8: "k4"}
SOURCE = {3: "maid", 5: "maid", 6: "cookie", 7: "cookie", 8: "cookie"}
AMOUNT = {1: 100.0, 2: 50.0, 3: 10.0, 4: 500.0, 5: 20.0, 6: 30.0, 7: 5.0}
JAN, FEB = datetime(2024, 1, 15, 10), datetime(2024, 2, 3, 23, 59)
TS = {1: JAN, 2: JAN, 4: JAN, 7: JAN, 3: FEB, 5: FEB, 6: FEB}
SCORED = [(1, 2, 0.9), (1, 4, 0.8), (7, 8, 0.7), (5, 6, 0.6), (2, 3, 0.4), (4, 5, 0.3)]
HAZARDS = [
    (2, "typo"),
    (3, "typo"),
    (4, "typo"),
    (4, "shared_family_email"),
    (5, "shared_family_email"),
    (6, "recycled_phone"),
    (6, "recycled_phone"),  # duplicate tag rows count once
]


def hand_rows() -> list[dict[str, Any]]:
    return [
        {
            "record_id": rid(i),
            "person": p,
            "household": {1: 1, 2: 1, 3: 2, 4: 3}[p],
            "source": SOURCE.get(i, "crm"),
            "amount": AMOUNT.get(i),
            "ts": TS.get(i),
        }
        for i, p in PERSON.items()
    ]


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path]:
    root = tmp_path_factory.mktemp("hand")
    ds = write_dataset(root / "ds", hand_rows(), hazards=[(rid(i), h) for i, h in HAZARDS])
    raw = write_raw(
        root / "raw",
        {rid(i): c for i, c in CLUSTER.items()},
        [(rid(a), rid(b), s) for a, b, s in SCORED],
    )
    return ds, raw


@pytest.fixture(scope="module")
def hand_run(hand: tuple[Dataset, Path]) -> dict[str, Any]:
    ds, raw = hand
    return evaluate_run(raw, ds, threshold=0.5, top_k=2)


def test_record_keys(hand_run):
    assert tuple(hand_run) == RECORD_KEYS or set(hand_run) == set(RECORD_KEYS)
    json.dumps(hand_run, allow_nan=False)  # JSON-able, no NaN / infinity
    # the partition metrics are those of bench.metrics.core: tp 2, predicted 5, true 5
    p = hand_run["person"]
    assert (p["tp_pairs"], p["pred_pairs"], p["true_pairs"]) == (2, 5, 5)


def test_candidates_and_stages(hand_run):
    c = hand_run["candidates"]["person"]
    # 6 candidates, 4 true (r1r2, r7r8, r2r3, r4r5); r1r3 never generated
    assert (c["candidate_pairs"], c["true_candidate_pairs"], c["true_pairs"]) == (6, 4, 5)
    assert c["pair_completeness"] == approx(4 / 5)
    # N = 8 -> 28 possible pairs; RR = 1 - 6/28
    assert c["possible_pairs"] == 28
    assert c["reduction_ratio"] == approx(1 - 6 / 28)
    assert c["candidate_precision"] == approx(4 / 6)
    stages = {s["stage"]: s for s in c["stages"]}
    # at >= 0.5: r1r2 T, r1r4 F, r7r8 T, r5r6 F -> 4 pairs, 2 true
    assert (stages["threshold"]["pairs"], stages["threshold"]["tp"]) == (4, 2)
    # closure adds r2r4 (false): 5 pairs, 2 true
    assert (stages["clusters"]["pairs"], stages["clusters"]["tp"]) == (5, 2)
    assert c["recall_lost_at_candidates"] == approx(1 / 5)  # r1r3
    assert c["recall_lost_at_threshold"] == approx(2 / 5)  # r2r3, r4r5 scored < 0.5
    assert c["recall_gained_at_clustering"] == approx(0.0)
    assert c["precision_lost_at_clustering"] == approx(2 / 4 - 2 / 5)
    # recall of the clusters = 1 - lost - lost + gained
    assert stages["clusters"]["recall"] == approx(1 - 1 / 5 - 2 / 5 + 0)
    h = hand_run["candidates"]["household"]
    # households: H1 = {r1..r5} -> 10 true pairs, H3 = {r7, r8} -> 1: 11 in all.
    # true candidates: r1r2, r1r4, r7r8, r2r3, r4r5 (r5r6 crosses H1/H2) -> 5
    assert (h["true_pairs"], h["true_candidate_pairs"]) == (11, 5)


def test_stage_attribution_needs_threshold(hand):
    ds, raw = hand
    c = evaluate_run(raw, ds)["candidates"]["person"]
    assert [s["stage"] for s in c["stages"]] == ["candidates", "clusters"]
    assert c["recall_lost_at_threshold"] is None
    assert c["recall_lost_at_candidates"] == approx(1 / 5)


def test_curve_and_threshold_summary(hand_run):
    pts = [p for p in hand_run["curves"] if p["level"] == "person"]
    # 6 pairs, 6 distinct scores: every one is a point. cumulative (pairs, tp):
    # 0.9 (1,1) 0.8 (2,1) 0.7 (3,2) 0.6 (4,2) 0.4 (5,3) 0.3 (6,4)
    assert [(p["threshold"], p["pairs"], p["tp"]) for p in pts] == [
        (0.9, 1, 1),
        (0.8, 2, 1),
        (0.7, 3, 2),
        (0.6, 4, 2),
        (0.4, 5, 3),
        (0.3, 6, 4),
    ]
    # recall is against all 5 true pairs, including r1r3 never generated
    assert pts[-1]["recall"] == approx(4 / 5)
    assert pts[2]["precision"] == approx(2 / 3)
    s = hand_run["threshold_summary"]["person"]
    # F1 = 2 tp / (T + pairs): 2/6, 2/7, 4/8, 4/9, 6/10, 8/11 -> best 8/11 at 0.3
    assert s["best_f1"]["threshold"] == 0.3
    assert s["best_f1"]["f1"] == approx(8 / 11)
    # F0.5 = 1.25 tp / (1.25 + pairs): .556 .385 .588 .476 .600 .690 -> 0.3
    assert s["best_f0_5"]["threshold"] == 0.3
    assert s["best_f0_5"]["f0_5"] == approx(5 / 7.25)
    at = {a["recall_level"]: a for a in s["at_recall"]}
    # recall >= 0.5 first reached at 0.4 (tp 3): precision 3/5; >= 0.8 at 0.3: 4/6
    assert (at[0.5]["threshold"], at[0.5]["precision"]) == (0.4, approx(3 / 5))
    assert (at[0.8]["threshold"], at[0.8]["precision"]) == (0.3, approx(4 / 6))
    # 0.9 and 0.95 are above the pair completeness (0.8): unreachable
    assert at[0.9]["threshold"] is None and at[0.95]["precision"] is None


def test_cost_thresholds(hand_run):
    cost = {c["cost_ratio"]: c for c in hand_run["business"]["person"]["cost_thresholds"]}
    # C fp + fn per threshold (fn = 5 - tp):
    #   C=1:  0.9 0+4, 0.8 1+4, 0.7 1+3, 0.6 2+3, 0.4 2+2, 0.3 2+1 -> 0.3 (3)
    #   C=5:  0.9 0+4, 0.8 5+4, 0.7 5+3, 0.6 10+3, 0.4 10+2, 0.3 10+1 -> 0.9 (4)
    assert (cost[1]["threshold"], cost[1]["cost"]) == (0.3, 3)
    assert (cost[5]["threshold"], cost[5]["cost"]) == (0.9, 4)
    assert (cost[10]["threshold"], cost[10]["cost"]) == (0.9, 4)


def test_hazards_hand_checked(hand_run):
    rows = {(h["level"], h["hazard"]): h for h in hand_run["hazards"]}
    # per record (person level): false partners |C| - n, missed |E| - n
    #   r1 1,1  r2 1,1  r3 0,2  r4 2,1  r5 1,1  r6 1,0  r7 0,0  r8 0,0
    typo = rows[("person", "typo")]  # r2, r3, r4
    assert typo["records"] == 3
    assert typo["false_merge_partners"] == 1 + 0 + 2
    assert typo["missed_merge_partners"] == 1 + 2 + 1
    # false pairs touching typo: r1r4, r2r4 (r2r4 has both ends tagged: 3 - 1 = 2)
    assert typo["false_merge_pairs"] == 2
    # missed pairs touching typo: r1r3, r2r3, r4r5 (r2r3 both tagged: 4 - 1 = 3)
    assert typo["missed_merge_pairs"] == 3
    assert typo["false_merge_share"] == approx(2 / 3)
    assert typo["missed_merge_share"] == approx(3 / 3)
    assert typo["records_falsely_merged"] == 2  # r2, r4
    assert typo["records_missing_partners"] == 3  # r2, r3, r4
    assert typo["false_partners_per_record"] == approx(3 / 3)
    sfe = rows[("person", "shared_family_email")]  # r4, r5
    # false: r1r4, r2r4, r5r6 (none among tagged); missed: r4r5 (both tagged: 2 - 1)
    assert (sfe["false_merge_pairs"], sfe["missed_merge_pairs"]) == (3, 1)
    phone = rows[("person", "recycled_phone")]  # r6 (duplicate tag row counted once)
    assert (phone["records"], phone["false_merge_pairs"], phone["missed_merge_pairs"]) == (1, 1, 0)
    everything = rows[("person", "(all)")]
    assert everything["records"] == 8
    assert (everything["false_merge_partners"], everything["missed_merge_partners"]) == (6, 6)
    assert (everything["false_merge_pairs"], everything["missed_merge_pairs"]) == (3, 3)
    assert everything["records_falsely_merged"] == 5  # r1 r2 r4 r5 r6
    # household level: k1 = {r1, r2, r4} all H1, so r4 is no longer a false merge
    h_typo = rows[("household", "typo")]
    assert h_typo["false_merge_pairs"] == 0


def test_hazards_absent_is_none(tmp_path):
    ds = write_dataset(tmp_path / "ds", hand_rows())
    raw = write_raw(tmp_path / "raw", {rid(i): c for i, c in CLUSTER.items()}, None)
    r = evaluate_run(raw, ds)
    assert r["hazards"] is None
    assert r["candidates"] is None and r["curves"] is None and r["threshold_summary"] is None
    assert r["business"]["person"]["cost_thresholds"] is None


def test_anonymous_hand_checked(hand_run):
    a = hand_run["anonymous"]["person"]
    # anonymous records r3 (A, k2), r5 (B, k3), r6 (C, k3), r7 r8 (D, k4); restricted:
    #   r3: no partner either side -> F0.5 = 1
    #   r5, r6: one predicted partner, no true one -> 0
    #   r7, r8: one partner, right -> 1.25 * 1 / (0.25 + 1) = 1
    assert a["records"] == 5
    assert a["per_identifier_f0_5"] == approx(3 / 5)
    assert a["linked_records"] == 2 and a["per_identifier_f0_5_linked"] == approx(1.0)
    assert a["per_identifier_precision"] == approx((0 + 0 + 1 + 1) / 4)
    assert a["per_identifier_recall"] == approx(1.0)
    # pairs among anonymous records: predicted r5r6, r7r8; true r7r8
    assert (a["pred_pairs"], a["true_pairs"], a["tp_pairs"]) == (2, 1, 1)
    assert a["pair_f1"] == approx(2 / 3)
    # devices (maids) r3 (person A) and r5 (B): neither person has a cookie, so neither
    # device can be scored (Drawbridge undefined); r5's cluster k3 holds cookie r6
    assert (a["devices"], a["devices_scored"], a["devices_without_true_cookie"]) == (2, 0, 2)
    assert a["devices_with_predicted_cookie"] == 1 and a["drawbridge_f0_5"] is None
    h = hand_run["anonymous"]["household"]
    # households: r3 H1 alone in k2 (true partner r5 missed) -> 0; r5 H1 with r6 H2 -> 0;
    # r6 -> 0; r7, r8 -> 1: mean 2/5
    assert h["per_identifier_f0_5"] == approx(2 / 5)


def test_business_hand_checked(hand, hand_run):
    b = hand_run["business"]["person"]
    assert b["entity_count_inflation"] == approx(4 / 4)
    # k1 majority A: r4 wrong; k3 tie B/C: one of r5, r6 wrong -> 2 of 8
    assert (b["wrong_entity_records"], b["wrong_entity_share"]) == (2, approx(2 / 8))
    # persons A 160, B 520, C 30, D 5: top 2 = {B, A}; clusters k1 650, k3 50 top;
    # majority k1 -> A, k3 -> tie B/C -> B (smaller id): both found
    assert (b["top_k"], b["top_k_effective"], b["top_k_found"]) == (2, 2, 2)
    assert b["top_k_recall"] == approx(1.0)
    assert b["top_k_distinct_entities"] == 2
    # top 1: B (520), but the top cluster k1 (650) is mostly A: not found
    ds, raw = hand
    b1 = evaluate_run(raw, ds, top_k=1)["business"]["person"]
    assert (b1["top_k_found"], b1["top_k_recall"]) == (0, 0.0)
    hb = hand_run["business"]["household"]
    # households H1 {r1..r5}, H2 {r6}, H3 {r7, r8}: 4 clusters / 3 households;
    # only r6 (H2 in k3, whose majority is H1) is wrong
    assert hb["entity_count_inflation"] == approx(4 / 3)
    assert hb["wrong_entity_records"] == 1


def test_monthly_hand_checked(hand_run):
    rows = {(m["level"], m["month"]): m for m in hand_run["monthly"]}
    assert sorted(rows) == [
        ("household", "2024-01"),
        ("household", "2024-02"),
        ("person", "2024-01"),
        ("person", "2024-02"),
    ]
    jan = rows[("person", "2024-01")]
    # January r1 r2 r4 r7: (n-1, |C|-1, |E|-1) = (1,2,2) (1,2,2) (0,2,1) (1,1,1)
    assert jan["records"] == 4
    assert (jan["tp_pairs"], jan["pred_pairs"], jan["true_pairs"]) == (3, 7, 6)
    assert jan["precision"] == approx(3 / 7) and jan["recall"] == approx(3 / 6)
    # B-cubed: n/|C| = 2/3 2/3 1/3 1 -> 2/3; n/|E| = 2/3 2/3 1/2 1 -> 17/24
    assert jan["bcubed_precision"] == approx(2 / 3)
    assert jan["bcubed_recall"] == approx(17 / 24)
    feb = rows[("person", "2024-02")]
    # February r3 r5 r6: (0,0,2) (0,1,1) (0,1,0); r8 has no ts and is in no month
    assert (feb["records"], feb["tp_pairs"], feb["pred_pairs"], feb["true_pairs"]) == (3, 0, 2, 3)
    assert feb["f1"] == 0.0
    assert feb["bcubed_precision"] == approx((1 + 1 / 2 + 1 / 2) / 3)
    assert feb["bcubed_recall"] == approx((1 / 3 + 1 / 2 + 1) / 3)


def test_recompute_is_identical(hand, tmp_path):
    ds, raw = hand
    copy = tmp_path / "raw-copy"
    shutil.copytree(raw, copy)
    a = evaluate_run(raw, ds, threads=2, threshold=0.5)
    b = evaluate_run(copy, ds, threads=1, threshold=0.5)
    for r in (a, b):
        r.pop("evaluation_timings")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_missing_optional_columns(tmp_path):
    # no amount / ts columns, no households, no anonymous sources
    root = tmp_path / "ds"
    (root / "truth").mkdir(parents=True)
    ids = [rid(i) for i in range(4)]
    pq.write_table(pa.table({"record_id": ids, "source": ["crm"] * 4}), root / "records.parquet")
    pq.write_table(
        pa.table({"record_id": ids, "person_id": [1, 1, 2, 2]}), root / "truth" / "records.parquet"
    )
    write_manifest(root, name="x", kind="test", recipe={}, seed=None, generator={"name": "t"})
    raw = write_raw(tmp_path / "raw", dict(zip(ids, [1, 1, 1, 2], strict=True)), [])
    r = evaluate_run(raw, Dataset.open(root), threshold=0.5)
    assert r["household"] is None and r["monthly"] is None and r["anonymous"] is None
    assert r["business"]["household"] is None
    assert r["business"]["person"]["top_k_recall"] is None
    assert r["curves"] == []  # an empty pairs file: no curve, but candidates counted
    assert r["candidates"]["person"]["candidate_pairs"] == 0
    assert r["candidates"]["person"]["pair_completeness"] == 0.0


# --- brute force on random small cases ----------------------------------------------------


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = engine.connect(threads=2)
    yield c
    c.close()


def _setup(
    con: duckdb.DuckDBPyConnection,
    persons: list[int],
    households: list[int],
    clusters: list[int],
    sources: list[str],
) -> tuple[Any, dict[str, dict[str, Any]]]:
    ids = [rid(i) for i in range(len(persons))]
    engine.register_arrow(con, "t_clusters", pa.table({"record_id": ids, "cluster_id": clusters}))
    engine.register_arrow(
        con,
        "t_truth",
        pa.table({"record_id": ids, "person_id": persons, "household_id": households}),
    )
    engine.register_arrow(con, "t_records", pa.table({"record_id": ids, "source": sources}))
    tables = build_base(
        con, clusters="t_clusters", truth="t_truth", records="t_records", has_household=True
    )
    build_levels(con, tables)
    core = {
        lv: metrics.evaluate_grouped(
            con,
            tables.grouped(lv),
            clusters="t_clusters",
            truth="t_truth",
            entity=LEVELS[lv],
            cells=tables.cells(lv),  # the path evaluate_run takes
        )
        for lv in tables.levels
    }
    return tables, core


partitions = st.integers(min_value=2, max_value=12).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),  # persons
        st.lists(st.integers(0, 4), min_size=n, max_size=n),  # clusters
        st.lists(st.sampled_from(["crm", "cookie", "maid"]), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2),
        # signed zeros tie like any equal scores
        st.lists(
            st.sampled_from([-0.0, 0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]), min_size=n * (n - 1) // 2
        ),
        st.lists(
            st.tuples(st.integers(0, n - 1), st.sampled_from(["a", "b", "c"])), max_size=2 * n
        ),
    )
)


@pytest.mark.slow  # many random cases against a brute-force enumeration of pairs
@settings(max_examples=40, deadline=None)
@given(partitions)
def test_sweep_and_hazards_match_brute_force(con, case):
    persons, clusters, sources, keep, scores, tags = case
    n = len(persons)
    households = [p // 2 for p in persons]
    tables, core = _setup(con, persons, households, clusters, sources)
    all_pairs = list(itertools.combinations(range(n), 2))
    scored = [(i, j, s) for (i, j), k, s in zip(all_pairs, keep, scores, strict=False) if k]
    engine.register_arrow(
        con,
        "t_pairs",
        pa.table(
            {
                "record_id_l": pa.array([rid(i) for i, _, _ in scored], pa.int64()),
                "record_id_r": pa.array([rid(j) for _, j, _ in scored], pa.int64()),
                "score": pa.array([s for *_, s in scored], pa.float64()),
            }
        ),
    )
    scores = build_score_table(con, "t_pairs", tables)
    truth_of = {"person": persons, "household": households}
    true_pairs = {lv: core[lv]["true_pairs"] for lv in tables.levels}
    pts = curve(scores, true_pairs)
    summary = threshold_summary(scores, true_pairs)
    cost = cost_thresholds(scores, true_pairs)
    for lv, ent in truth_of.items():
        t = sum(1 for i, j in all_pairs if ent[i] == ent[j])
        assert t == true_pairs[lv]
        # brute force: every distinct score as a threshold, descending
        brute = []
        for s in sorted({s for *_, s in scored}, reverse=True):
            acc = [(i, j) for i, j, x in scored if x >= s]
            tp = sum(1 for i, j in acc if ent[i] == ent[j])
            brute.append((s, len(acc), tp))
        level_pts = [(p["threshold"], p["pairs"], p["tp"]) for p in pts if p["level"] == lv]
        assert set(level_pts) <= set(brute)
        if brute:
            assert level_pts[0] == brute[0] and level_pts[-1] == brute[-1]
        if not brute or t == 0:
            assert summary[lv] is None
        else:
            # ties: the higher threshold (max over (value, threshold))
            f1 = max(brute, key=lambda b: (2 * b[2] / (t + b[1]), b[0]))
            f05 = max(brute, key=lambda b: (1.25 * b[2] / (0.25 * t + b[1]), b[0]))
            assert summary[lv]["best_f1"]["threshold"] == f1[0]
            assert summary[lv]["best_f0_5"]["threshold"] == f05[0]
            for a in summary[lv]["at_recall"]:
                reach = [b for b in brute if b[2] / t >= a["recall_level"]]
                assert a["threshold"] == (reach[0][0] if reach else None)
        for c in cost[lv] or []:
            best = min(brute, key=lambda b: (c["cost_ratio"] * (b[1] - b[2]) + t - b[2], -b[0]))
            assert c["threshold"] == best[0]

    # hazards vs pair enumeration: a pair is attributed to h if either record carries h
    engine.register_arrow(
        con,
        "t_hazards",
        pa.table(
            {
                "record_id": pa.array([rid(i) for i, _ in tags], pa.int64()),
                "hazard": [h for _, h in tags],
            }
        ),
    )
    rows = {(r["level"], r["hazard"]): r for r in hazard_metrics(con, tables, "t_hazards", core)}
    tagged: dict[str, set[int]] = {}
    for i, h in tags:
        tagged.setdefault(h, set()).add(i)
    for lv, ent in truth_of.items():
        fps = [(i, j) for i, j in all_pairs if clusters[i] == clusters[j] and ent[i] != ent[j]]
        fns = [(i, j) for i, j in all_pairs if clusters[i] != clusters[j] and ent[i] == ent[j]]
        assert rows[(lv, "(all)")]["false_merge_pairs"] == len(fps)
        assert rows[(lv, "(all)")]["missed_merge_pairs"] == len(fns)
        assert {h for (level, h) in rows if level == lv} == {"(all)", *tagged}
        for h, recs in tagged.items():
            r = rows[(lv, h)]
            assert r["records"] == len(recs)
            assert r["false_merge_pairs"] == sum(1 for i, j in fps if i in recs or j in recs)
            assert r["missed_merge_pairs"] == sum(1 for i, j in fns if i in recs or j in recs)
            assert r["false_merge_partners"] == sum(1 for i, j in fps for x in (i, j) if x in recs)

    # anonymous: per-record F0.5 and pair counts by enumeration
    anon = [i for i in range(n) if sources[i] != "crm"]
    result = anonymous_metrics(con, tables)
    if not anon:
        assert result is None
        return
    for lv, ent in truth_of.items():
        fs = []
        for i in anon:
            pred = {j for j in anon if j != i and clusters[j] == clusters[i]}
            true = {j for j in anon if j != i and ent[j] == ent[i]}
            tp = len(pred & true)
            fs.append(1.0 if not pred and not true else 1.25 * tp / (0.25 * len(true) + len(pred)))
        a = result[lv]
        assert a["records"] == len(anon)
        assert a["per_identifier_f0_5"] == pytest.approx(sum(fs) / len(fs), abs=1e-12)
        pairs = list(itertools.combinations(anon, 2))
        assert a["tp_pairs"] == sum(
            1 for i, j in pairs if clusters[i] == clusters[j] and ent[i] == ent[j]
        )
        assert a["pred_pairs"] == sum(1 for i, j in pairs if clusters[i] == clusters[j])
        assert a["true_pairs"] == sum(1 for i, j in pairs if ent[i] == ent[j])


def test_person_metrics_unchanged_by_new_path(con, hand):
    # evaluate_run's partition metrics equal bench.metrics.evaluate straight on the files
    ds, raw = hand
    engine.register_parquet(con, "f_clusters", raw / "clusters.parquet")
    engine.register_parquet(con, "f_truth", ds.truth_path)
    r = evaluate_run(raw, ds)
    assert r["person"] == metrics.evaluate(con, "f_clusters", "f_truth")
    assert r["household"] == metrics.evaluate(con, "f_clusters", "f_truth", entity="household_id")
    assert Counter(p["level"] for p in r["curves"]) == {"person": 6, "household": 6}


def test_checksum_matches_window_definition(hand, hand_run):
    # evaluate_run's checksum (from ev_base) is the original definition's, on the file
    _ds, raw = hand
    con = engine.connect(threads=1)
    try:
        engine.register_parquet(con, "k", raw / "clusters.parquet")
        want = engine.query_one(
            con,
            "SELECT CAST(sum(CAST(hash(record_id, rep) AS HUGEINT)) AS VARCHAR) AS chk FROM "
            "(SELECT record_id, min(record_id) OVER (PARTITION BY cluster_id) AS rep FROM k)",
            step="test checksum",
        )["chk"]
    finally:
        con.close()
    assert hand_run["output"]["checksum"] == want


def test_evaluation_turns_numpy_huge_pages_off_and_restores(hand, monkeypatch):
    # evaluate_run keeps numpy from advising huge pages while it runs (see
    # bench.metrics.evaluate._numpy_small_pages), then restores the caller's setting
    import numpy as np

    import bench.metrics.evaluate as evaluate_module

    toggle = np._core.multiarray._set_madvise_hugepage
    during = []
    build = evaluate_module.build_score_table

    def spy(*args: Any, **kwargs: Any) -> Any:
        state = toggle(False)
        toggle(state)
        during.append(state)
        return build(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "build_score_table", spy)
    ds, raw = hand
    after = []
    original = toggle(True)
    try:
        for setting in (True, False):
            toggle(setting)
            evaluate_run(raw, ds, threads=1, threshold=0.5)
            after.append(toggle(setting))
    finally:
        toggle(original)
    assert during == [False, False]
    assert after == [True, False]
