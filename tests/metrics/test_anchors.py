"""The anchors' metrics (Drawbridge per device, CIKM pairs) and the pair classes.

A hand-built run checked value by value (arithmetic in the comments), then random small
runs against brute-force enumeration of devices and pairs (hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.metrics.evaluate import evaluate_run


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


# persons P1 = {d1 maid, c1 c2 c3 cookies, f1 f2 crm}, P2 = {d2 maid, c4, f3 order},
#         P3 = {d3 maid}, P4 = {d4 maid, c5}
# clusters K1 = {d1 c1 c2 c4 f1}, K2 = {c3 f2}, K3 = {d2 f3}, K4 = {d3 c5}, K5 = {d4}
HAND = [
    ("d1", 1, "maid", "K1"),
    ("c1", 1, "cookie", "K1"),
    ("c2", 1, "cookie", "K1"),
    ("c3", 1, "cookie", "K2"),
    ("f1", 1, "crm", "K1"),
    ("f2", 1, "crm", "K2"),
    ("d2", 2, "maid", "K3"),
    ("c4", 2, "cookie", "K1"),
    ("f3", 2, "order", "K3"),
    ("d3", 3, "maid", "K4"),
    ("d4", 4, "maid", "K5"),
    ("c5", 4, "cookie", "K4"),
]


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory, lens_run: Callable[..., Any]) -> dict[str, Any]:
    ds, raw, _ids = lens_run(tmp_path_factory.mktemp("anchors"), [(*r, None) for r in HAND])
    return evaluate_run(raw, ds, threads=1)


def test_drawbridge_hand_checked(hand):
    a = hand["anonymous"]["person"]
    # d1: predicted cookies = K1's {c1 c2 c4} (3), true = P1's {c1 c2 c3} (3), right 2:
    #     F0.5 = 1.25 * 2 / (0.25 * 3 + 3) = 2.5 / 3.75 = 2/3 (p = r = 2/3)
    # d2: predicted none (K3 has no cookie), true {c4}: scored, 0
    # d3: P3 has no cookie: left out (devices_without_true_cookie); K4 gives it c5
    # d4: predicted none, true {c5}: 0
    # mean over the 3 scored devices: (2/3 + 0 + 0) / 3 = 2/9
    assert (a["devices"], a["devices_scored"], a["devices_without_true_cookie"]) == (4, 3, 1)
    assert a["devices_with_predicted_cookie"] == 2  # d1, d3
    assert a["drawbridge_f0_5"] == approx(2 / 9)
    assert a["drawbridge_precision"] == approx(2 / 3)  # d1 only has a prediction
    assert a["drawbridge_recall"] == approx((2 / 3 + 0 + 0) / 3)


def test_cikm_pairs_hand_checked(hand):
    a = hand["anonymous"]["person"]
    # anonymous records only: true P1 {d1 c1 c2 c3} 6 + P2 {d2 c4} 1 + P4 {d4 c5} 1 = 8;
    # predicted K1 {d1 c1 c2 c4} 6 + K4 {d3 c5} 1 = 7; right (K1, P1) {d1 c1 c2} 3
    assert (a["tp_pairs"], a["pred_pairs"], a["true_pairs"]) == (3, 7, 8)
    assert a["pair_precision"] == approx(3 / 7)
    assert a["pair_recall"] == approx(3 / 8)
    assert a["pair_f1"] == approx(2 * 3 / (7 + 8))
    # per-identifier variant kept under its own name: 9 anonymous records
    assert a["records"] == 9 and "mean_f0_5" not in a and "per_identifier_f0_5" in a


def test_segments_hand_checked(hand):
    s = hand["segments"]["person"]
    assert (s["first_party_records"], s["anonymous_records"]) == (3, 9)
    # cells (f first-party, a anonymous): (K1,P1) f1 a3, (K1,P2) a1, (K2,P1) f1 a1,
    #   (K3,P2) f1 a1, (K4,P3) a1, (K4,P4) a1, (K5,P4) a1
    #   tp: FF 0; AF 1*3 + 1*1 + 1*1 = 5; AA 3
    # clusters: K1 f1 a4 (AF 4, AA 6), K2 f1 a1 (AF 1), K3 f1 a1 (AF 1), K4 a2 (AA 1), K5 a1
    #   predicted: FF 0, AF 6, AA 7
    # persons: P1 f2 a4 (FF 1, AF 8, AA 6), P2 f1 a2 (AF 2, AA 1), P3 a1, P4 a2 (AA 1)
    #   true: FF 1, AF 10, AA 8
    fp = s["first_party"]
    assert (fp["tp_pairs"], fp["pred_pairs"], fp["true_pairs"]) == (0, 0, 1)
    assert fp["precision"] is None and fp["recall"] == 0.0 and fp["f1"] == 0.0
    af = s["anonymous_first_party"]
    assert (af["tp_pairs"], af["pred_pairs"], af["true_pairs"]) == (5, 6, 10)
    assert af["precision"] == approx(5 / 6) and af["recall"] == approx(1 / 2)
    assert af["f1"] == approx(2 * 5 / (6 + 10))
    aa = s["anonymous"]
    assert (aa["tp_pairs"], aa["pred_pairs"], aa["true_pairs"]) == (3, 7, 8)
    # the classes partition all pairs: they add up to the person-level counts
    p = hand["person"]
    assert (p["tp_pairs"], p["pred_pairs"], p["true_pairs"]) == (0 + 5 + 3, 0 + 6 + 7, 1 + 10 + 8)


def test_segments_need_both_lenses(tmp_path, lens_run):
    only_anon = [r for r in HAND if r[2] in ("cookie", "maid")]
    ds, raw, _ = lens_run(tmp_path / "a", [(*r, None) for r in only_anon])
    r = evaluate_run(raw, ds, threads=1)
    assert r["segments"] is None and r["anonymous"]["person"]["devices"] == 4
    ds, raw, _ = lens_run(tmp_path / "f", [(*r, None) for r in HAND if r[2] == "crm"])
    r = evaluate_run(raw, ds, threads=1)
    assert r["segments"] is None and r["anonymous"] is None and r["ceilings"] is None


# --- brute force on random small runs -------------------------------------------------

runs = st.integers(min_value=2, max_value=12).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),  # persons
        st.lists(st.integers(0, 4), min_size=n, max_size=n),  # clusters
        st.lists(st.sampled_from(["crm", "cookie", "maid"]), min_size=n, max_size=n),
    )
)


def _brute_drawbridge(
    names: list[str], person: dict[str, int], cluster: dict[str, int], source: dict[str, str]
) -> tuple[int, int, float | None]:
    """(scored devices, left-out devices, mean F0.5) by enumerating devices."""
    cookies = [x for x in names if source[x] == "cookie"]
    scores, left_out = [], 0
    for d in (x for x in names if source[x] == "maid"):
        pred = {c for c in cookies if cluster[c] == cluster[d]}
        true = {c for c in cookies if person[c] == person[d]}
        if not true:
            left_out += 1
            continue
        tp = len(pred & true)
        p, r = (tp / len(pred) if pred else 0.0), tp / len(true)
        scores.append(1.25 * p * r / (0.25 * p + r) if tp else 0.0)
    return len(scores), left_out, (sum(scores) / len(scores) if scores else None)


@pytest.mark.slow  # many random cases against a brute-force enumeration of pairs
@settings(max_examples=25, deadline=None)
@given(runs)
def test_anchors_and_segments_match_brute_force(
    tmp_path_factory: pytest.TempPathFactory,
    lens_run: Callable[..., Any],
    pair_scores: Callable[..., Any],
    case: tuple[list[int], list[int], list[str]],
) -> None:
    persons, clusters, sources = case
    names = [f"r{i}" for i in range(len(persons))]
    person, cluster = (
        dict(zip(names, persons, strict=True)),
        dict(zip(names, clusters, strict=True)),
    )
    source = dict(zip(names, sources, strict=True))
    root: Path = tmp_path_factory.mktemp("random")
    ds, raw, _ = lens_run(root, [(x, person[x], source[x], cluster[x], None) for x in names])
    r = evaluate_run(raw, ds, threads=1)
    anon = [x for x in names if source[x] != "crm"]
    if not anon:
        assert r["anonymous"] is None and r["segments"] is None
        return
    a = r["anonymous"]["person"]
    scored, left_out, f05 = _brute_drawbridge(names, person, cluster, source)
    assert (a["devices_scored"], a["devices_without_true_cookie"]) == (scored, left_out)
    assert a["drawbridge_f0_5"] == (None if f05 is None else pytest.approx(f05, abs=1e-12))

    def klass(x: str, y: str) -> str:
        kinds = sorted(source[z] == "crm" for z in (x, y))
        return {(True, True): "first_party", (False, True): "anonymous_first_party"}.get(
            tuple(kinds), "anonymous"
        )

    counts: dict[str, list[int]] = {}
    for x, y in combinations(names, 2):
        c = counts.setdefault(klass(x, y), [0, 0, 0])
        same_c, same_p = cluster[x] == cluster[y], person[x] == person[y]
        c[0] += same_c and same_p
        c[1] += same_c
        c[2] += same_p
    tp, pred, true = counts.get("anonymous", [0, 0, 0])
    assert (a["tp_pairs"], a["pred_pairs"], a["true_pairs"]) == (tp, pred, true)
    if len(anon) == len(names):
        assert r["segments"] is None
        return
    s = r["segments"]["person"]
    for name in ("first_party", "anonymous_first_party", "anonymous"):
        tp, pred, true = counts.get(name, [0, 0, 0])
        got = s[name]
        assert (got["tp_pairs"], got["pred_pairs"], got["true_pairs"]) == (tp, pred, true)
        want = pair_scores(tp, pred, true)
        assert got["precision"] == want["precision"] or got["precision"] == pytest.approx(
            want["precision"]
        )
        assert got["recall"] == want["recall"] or got["recall"] == pytest.approx(want["recall"])
        if want["f1"] is not None:
            assert got["f1"] == pytest.approx(want["f1"])
