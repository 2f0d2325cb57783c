"""Tests of bench.metrics.core against hand-computed numbers and independent implementations.

Pairwise counts are checked against scikit-learn's ``pair_confusion_matrix`` (which
counts ordered pairs, hence the halving) and B-cubed / shape counts against direct
O(n^2) Python written here, over random partitions from hypothesis.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics.cluster import pair_confusion_matrix

from bench.metrics.core import METRICS, EvaluationInputError, MetricInfo, evaluate
from bench.sql import engine

BIG = 10**12  # record ids far beyond 32 bits and not contiguous


def big_ids(n: int) -> list[int]:
    return [BIG + 7919 * i for i in range(n)]


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = engine.connect(threads=2)
    yield c
    c.close()


def run(
    con: duckdb.DuckDBPyConnection,
    truth: Sequence[Any],
    pred: Sequence[Any],
    *,
    ids: Sequence[int] | None = None,
    entity: str = "person_id",
) -> dict[str, Any]:
    """Evaluate predicted labels ``pred`` against true labels ``truth`` (same order)."""
    ids = list(ids) if ids is not None else big_ids(len(truth))
    engine.register_arrow(con, "t_clusters", pa.table({"record_id": ids, "cluster_id": pred}))
    engine.register_arrow(
        con,
        "t_truth",
        pa.table({"record_id": ids, entity: truth, "other": [0] * len(ids)}),
    )
    return evaluate(con, "t_clusters", "t_truth", entity=entity)


def approx(x: Fraction | float) -> Any:
    return pytest.approx(float(x), rel=1e-12, abs=1e-15)


# --- hand-checked cases -------------------------------------------------------------


def test_hand_checked_mixed_errors(con):
    # truth:  A = {r0, r1, r2, r3}, B = {r4, r5}
    # pred:   "p1" = {r0, r1, r2}, "p2" = {r3, r4, r5}
    # cells:  (p1, A) = 3, (p2, A) = 1, (p2, B) = 2
    truth = [1, 1, 1, 1, 2, 2]
    pred = ["p1", "p1", "p1", "p2", "p2", "p2"]
    m = run(con, truth, pred)
    # tp = C(3,2) + C(1,2) + C(2,2) = 3 + 0 + 1 = 4
    # pred pairs = C(3,2) + C(3,2) = 6; true pairs = C(4,2) + C(2,2) = 7
    # fp = 6 - 4 = 2; fn = 7 - 4 = 3
    assert (m["tp_pairs"], m["pred_pairs"], m["true_pairs"]) == (4, 6, 7)
    assert (m["fp_pairs"], m["fn_pairs"]) == (2, 3)
    assert m["precision"] == approx(Fraction(4, 6))
    assert m["recall"] == approx(Fraction(4, 7))
    # F1 = 2*4 / (2*4 + 2 + 3) = 8/13
    assert m["f1"] == approx(Fraction(8, 13))
    # F0.5 = 1.25*4 / (1.25*4 + 0.25*3 + 2) = 5 / 7.75 = 20/31
    assert m["f0_5"] == approx(Fraction(20, 31))
    # B-cubed P = (1/6) * (3^2/3 + 1^2/3 + 2^2/3) = (1/6) * 14/3 = 7/9
    # B-cubed R = (1/6) * (3^2/4 + 1^2/4 + 2^2/2) = (1/6) * 9/2 = 3/4
    # B-cubed F1 = 2 * 7/9 * 3/4 / (7/9 + 3/4) = (7/6) / (55/36) = 42/55
    assert m["bcubed_precision"] == approx(Fraction(7, 9))
    assert m["bcubed_recall"] == approx(Fraction(3, 4))
    assert m["bcubed_f1"] == approx(Fraction(42, 55))
    # p2 mixes A and B; A is split over p1 and p2; B is whole but p2 holds r3 too
    assert m["n_records"] == 6
    assert (m["n_clusters"], m["n_entities"]) == (2, 2)
    assert (m["overmerged_clusters"], m["split_entities"]) == (1, 1)
    assert (m["exact_entities"], m["exact_entity_share"]) == (0, 0.0)
    assert (m["largest_cluster"], m["largest_entity"]) == (3, 4)
    assert (m["singleton_clusters"], m["singleton_entities"]) == (0, 0)
    assert m["cluster_entity_ratio"] == 1.0


def test_hand_checked_partial_exact(con):
    # truth:  10 = {r0, r1, r2}, 20 = {r3, r4}, 30 = {r5}
    # pred:   a = {r0, r1}, b = {r2, r3, r4}, c = {r5}
    # cells:  (a,10) = 2, (b,10) = 1, (b,20) = 2, (c,30) = 1
    m = run(con, [10, 10, 10, 20, 20, 30], [7, 7, 8, 8, 8, 9], ids=[5, 3, 99, 1, 42, 2**40])
    # tp = 1 + 0 + 1 + 0 = 2; pred = C(2,2) + C(3,2) + 0 = 4; true = C(3,2) + C(2,2) = 4
    assert (m["tp_pairs"], m["fp_pairs"], m["fn_pairs"]) == (2, 2, 2)
    assert (m["precision"], m["recall"], m["f1"], m["f0_5"]) == (0.5, 0.5, 0.5, 0.5)
    # B-cubed P = (1/6) * (4/2 + 1/3 + 4/3 + 1/1) = (1/6) * 14/3 = 7/9
    # B-cubed R = (1/6) * (4/3 + 1/3 + 4/2 + 1/1) = (1/6) * 14/3 = 7/9
    assert m["bcubed_precision"] == approx(Fraction(7, 9))
    assert m["bcubed_recall"] == approx(Fraction(7, 9))
    assert m["bcubed_f1"] == approx(Fraction(7, 9))
    # only entity 30 is exactly cluster c: 1 of 3
    assert m["exact_entities"] == 1
    assert m["exact_entity_share"] == approx(Fraction(1, 3))
    assert (m["overmerged_clusters"], m["split_entities"]) == (1, 1)
    assert (m["singleton_clusters"], m["singleton_entities"]) == (1, 1)


def test_all_singletons_prediction(con):
    # truth: 3 entities of sizes 3, 2, 1 -> true pairs 3 + 1 + 0 = 4; prediction: 6 singletons
    m = run(con, [1, 1, 1, 2, 2, 3], [f"s{i}" for i in range(6)])
    assert (m["pred_pairs"], m["tp_pairs"], m["fp_pairs"], m["fn_pairs"]) == (0, 0, 0, 4)
    assert m["precision"] is None  # no predicted pairs: undefined, not 0 or 1
    assert m["recall"] == 0.0
    assert m["f1"] == 0.0  # 2*0 / (0 + 0 + 4)
    assert m["f0_5"] == 0.0
    # every record is alone: B-cubed P = 1; R = (1/6) * (3 * 1/3 + 2 * 1/2 + 1) = 1/2
    assert m["bcubed_precision"] == 1.0
    assert m["bcubed_recall"] == approx(0.5)
    assert m["bcubed_f1"] == approx(Fraction(2, 3))
    assert m["singleton_clusters"] == 6
    assert m["split_entities"] == 2
    assert m["exact_entities"] == 1  # entity 3 is a singleton and so is its cluster


def test_one_giant_cluster(con):
    # truth: sizes 3, 2, 1 (true pairs 4); prediction: everything in one cluster (15 pairs)
    m = run(con, [1, 1, 1, 2, 2, 3], ["all"] * 6)
    assert (m["pred_pairs"], m["true_pairs"], m["tp_pairs"]) == (15, 4, 4)
    assert (m["fp_pairs"], m["fn_pairs"]) == (11, 0)
    assert m["precision"] == approx(Fraction(4, 15))
    assert m["recall"] == 1.0
    # B-cubed P = (1/6) * (9 + 4 + 1) / 6 = 14/36 = 7/18; R = 1
    assert m["bcubed_precision"] == approx(Fraction(7, 18))
    assert m["bcubed_recall"] == 1.0
    assert (m["n_clusters"], m["overmerged_clusters"], m["largest_cluster"]) == (1, 1, 6)
    assert m["exact_entities"] == 0


def test_truth_all_singletons(con):
    # no true pairs: recall undefined; predicted pairs C(2,2) + C(2,2) = 2, all false
    m = run(con, [1, 2, 3, 4, 5], ["x", "x", "y", "y", "z"])
    assert (m["true_pairs"], m["pred_pairs"], m["tp_pairs"], m["fp_pairs"]) == (0, 2, 0, 2)
    assert m["recall"] is None
    assert m["precision"] == 0.0
    assert m["f1"] == 0.0
    assert m["bcubed_recall"] == 1.0
    # B-cubed P = (1/5) * (1/2 + 1/2 + 1/2 + 1/2 + 1) = 3/5
    assert m["bcubed_precision"] == approx(0.6)
    assert m["singleton_entities"] == 5
    assert m["exact_entities"] == 1


def test_single_record(con):
    m = run(con, [7], ["only"])
    assert (m["n_records"], m["n_clusters"], m["n_entities"]) == (1, 1, 1)
    assert (m["pred_pairs"], m["true_pairs"], m["tp_pairs"]) == (0, 0, 0)
    # 0/0 everywhere in the pairwise metrics, F included (tp + fp + fn = 0)
    for key in ("precision", "recall", "f1", "f0_5"):
        assert m[key] is None, key
    assert (m["bcubed_precision"], m["bcubed_recall"], m["bcubed_f1"]) == (1.0, 1.0, 1.0)
    assert (m["exact_entities"], m["exact_entity_share"]) == (1, 1.0)


def test_identical_partitions(con):
    truth = [3, 3, 1, 2, 2, 2, 9, 3]
    m = run(con, truth, [f"c{t}" for t in truth])
    for key in ("precision", "recall", "f1", "f0_5", "bcubed_precision", "bcubed_recall"):
        assert m[key] == 1.0, key
    assert m["bcubed_f1"] == 1.0
    assert (m["tp_pairs"], m["fp_pairs"], m["fn_pairs"]) == (3 + 3, 0, 0)
    assert (m["overmerged_clusters"], m["split_entities"]) == (0, 0)
    assert (m["exact_entities"], m["exact_entity_share"]) == (4, 1.0)
    assert m["cluster_entity_ratio"] == 1.0


def test_empty_input(con):
    m = run(con, pa.array([], pa.int64()), pa.array([], pa.int64()), ids=[])
    assert m["n_records"] == m["tp_pairs"] == m["n_clusters"] == 0
    for key in ("precision", "recall", "f1", "bcubed_precision", "bcubed_f1"):
        assert m[key] is None, key
    assert m["largest_cluster"] is None


def test_other_entity_column(con):
    # household-level truth: two households; prediction merges them
    m = run(con, [1, 1, 2, 2], ["a", "a", "a", "a"], entity="household_id")
    assert (m["tp_pairs"], m["pred_pairs"], m["true_pairs"]) == (2, 6, 2)


def test_giant_cluster_pair_counts_do_not_overflow(con):
    # 200k records in one cluster: C(200000, 2) = 19_999_900_000 pairs (> 2^32)
    n = 200_000
    engine.execute(
        con,
        f"CREATE OR REPLACE TABLE g_truth AS SELECT {BIG} + 7919 * i AS record_id, "
        f"i // 4 AS person_id FROM range({n}) AS t(i)",
    )
    engine.execute(
        con, "CREATE OR REPLACE TABLE g_clusters AS SELECT record_id, 1 AS cluster_id FROM g_truth"
    )
    m = evaluate(con, "g_clusters", "g_truth")
    assert m["pred_pairs"] == n * (n - 1) // 2 == 19_999_900_000
    assert m["true_pairs"] == m["tp_pairs"] == (n // 4) * 6
    assert m["fp_pairs"] == 19_999_900_000 - 300_000
    assert m["bcubed_precision"] == approx(Fraction(4, n))
    # the same input gives the same bits (B-cubed is summed exactly, not in thread order)
    assert evaluate(con, "g_clusters", "g_truth") == m


# --- random partitions against independent implementations --------------------------


def reference(truth: Sequence[Any], pred: Sequence[Any]) -> dict[str, Any]:
    """Direct O(n^2) computation of B-cubed and shape counts; pairs from scikit-learn."""
    n = len(truth)
    cm = pair_confusion_matrix(truth, pred)  # ordered pairs: [[tn, fp], [fn, tp]]
    tp, fp, fn = int(cm[1, 1]) // 2, int(cm[0, 1]) // 2, int(cm[1, 0]) // 2
    bp = br = Fraction(0)
    for i in range(n):
        same_c = [j for j in range(n) if pred[j] == pred[i]]
        same_e = [j for j in range(n) if truth[j] == truth[i]]
        both = [j for j in same_c if truth[j] == truth[i]]
        bp += Fraction(len(both), len(same_c))
        br += Fraction(len(both), len(same_e))
    members_c: dict[Any, set[int]] = defaultdict(set)
    members_e: dict[Any, set[int]] = defaultdict(set)
    for i in range(n):
        members_c[pred[i]].add(i)
        members_e[truth[i]].add(i)
    clusters = list(members_c.values())
    entities = list(members_e.values())
    return {
        "tp_pairs": tp,
        "fp_pairs": fp,
        "fn_pairs": fn,
        "bcubed_precision": bp / n,
        "bcubed_recall": br / n,
        "n_clusters": len(clusters),
        "n_entities": len(entities),
        "overmerged_clusters": sum(len({truth[i] for i in c}) > 1 for c in clusters),
        "split_entities": sum(len({pred[i] for i in e}) > 1 for e in entities),
        "exact_entities": sum(e in clusters for e in entities),
        "largest_cluster": max(map(len, clusters)),
        "largest_entity": max(map(len, entities)),
        "singleton_clusters": sum(len(c) == 1 for c in clusters),
        "singleton_entities": sum(len(e) == 1 for e in entities),
    }


@st.composite
def partitions(draw: st.DrawFn) -> tuple[list[int], list[Any], list[int]]:
    n = draw(st.integers(1, 60))
    k_true = draw(st.integers(1, n))
    k_pred = draw(st.integers(1, n))
    truth = draw(st.lists(st.integers(0, k_true - 1), min_size=n, max_size=n))
    pred: list[Any] = draw(st.lists(st.integers(0, k_pred - 1), min_size=n, max_size=n))
    if draw(st.booleans()):
        pred = [f"cluster-{p}" for p in pred]
    ids = draw(
        st.one_of(
            st.just(big_ids(n)),
            st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n, unique=True),
        )
    )
    return truth, pred, ids


@settings(max_examples=100, deadline=None)
@given(partitions())
def test_random_partitions_match_reference(con, part):
    truth, pred, ids = part
    m = run(con, truth, pred, ids=ids)
    ref = reference(truth, pred)
    for key, want in ref.items():
        got = m[key]
        if isinstance(want, Fraction):
            assert got == approx(want), key
        else:
            assert got == want, key
    n = len(truth)
    assert m["n_records"] == n
    assert m["pred_pairs"] == m["tp_pairs"] + m["fp_pairs"]
    assert m["true_pairs"] == m["tp_pairs"] + m["fn_pairs"]
    tp, pred_pairs, true_pairs = m["tp_pairs"], m["pred_pairs"], m["true_pairs"]
    assert m["precision"] == (None if pred_pairs == 0 else approx(Fraction(tp, pred_pairs)))
    assert m["recall"] == (None if true_pairs == 0 else approx(Fraction(tp, true_pairs)))
    if m["precision"] and m["recall"]:
        p, r = m["precision"], m["recall"]
        assert m["f1"] == approx(2 * p * r / (p + r))
        assert m["f0_5"] == approx(1.25 * p * r / (0.25 * p + r))


# --- errors ---------------------------------------------------------------------------


def test_record_absent_from_truth_is_named(con):
    engine.register_arrow(con, "e_truth", pa.table({"record_id": [1, 2], "person_id": [1, 1]}))
    engine.register_arrow(
        con, "e_clusters", pa.table({"record_id": [1, 2, 777], "cluster_id": [1, 1, 2]})
    )
    with pytest.raises(
        EvaluationInputError,
        match=r"1 record_id\(s\) of 'e_clusters' are absent from 'e_truth' \(e.g. 777\)",
    ):
        evaluate(con, "e_clusters", "e_truth")


def test_missing_entity_column_is_named(con):
    engine.register_arrow(con, "e_truth", pa.table({"record_id": [1, 2], "person_id": [1, 1]}))
    engine.register_arrow(con, "e_clusters", pa.table({"record_id": [1, 2], "cluster_id": [1, 1]}))
    with pytest.raises(
        EvaluationInputError, match=r"truth table/view 'e_truth' lacks column.*household_id"
    ):
        evaluate(con, "e_clusters", "e_truth", entity="household_id")


def test_missing_cluster_column_is_named(con):
    engine.register_arrow(con, "e_truth", pa.table({"record_id": [1], "person_id": [1]}))
    engine.register_arrow(con, "e_clusters", pa.table({"record_id": [1], "cluster": [1]}))
    with pytest.raises(EvaluationInputError, match=r"'e_clusters' lacks column.*cluster_id"):
        evaluate(con, "e_clusters", "e_truth")


def test_missing_table_is_named(con):
    with pytest.raises(EvaluationInputError, match="clusters table/view 'no_such_table'"):
        evaluate(con, "no_such_table", "t_truth")


def test_null_entity_and_null_cluster_are_rejected(con):
    engine.register_arrow(con, "e_truth", pa.table({"record_id": [1, 2], "person_id": [1, None]}))
    engine.register_arrow(con, "e_clusters", pa.table({"record_id": [1, 2], "cluster_id": [1, 1]}))
    with pytest.raises(
        EvaluationInputError, match="1 record\\(s\\) of 'e_clusters' have a NULL 'person_id'"
    ):
        evaluate(con, "e_clusters", "e_truth")
    engine.register_arrow(con, "e_truth", pa.table({"record_id": [1, 2], "person_id": [1, 1]}))
    engine.register_arrow(
        con, "e_clusters", pa.table({"record_id": [1, 2], "cluster_id": [1, None]})
    )
    with pytest.raises(EvaluationInputError, match="NULL cluster_id"):
        evaluate(con, "e_clusters", "e_truth")


# --- registry and output types --------------------------------------------------------


def test_registry_describes_every_output_key(con):
    m = run(con, [1, 1, 2], ["a", "b", "b"])
    assert list(m) == list(METRICS)
    for key, info in METRICS.items():
        assert isinstance(info, MetricInfo)
        assert info.direction in ("higher", "lower", "neutral"), key
        assert info.label and info.description, key


def test_values_are_plain_json_types(con):
    m = run(con, [1, 1, 2, 3], ["a", "b", "b", "b"])
    for key, value in m.items():
        assert value is None or type(value) in (int, float), (key, type(value))
    assert json.loads(json.dumps(m)) == m
