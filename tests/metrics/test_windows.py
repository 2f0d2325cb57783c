"""The anonymous task per observation window: a hand-built case and brute force."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.metrics.evaluate import evaluate_run


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def day(d: int, hour: int = 12) -> datetime:
    """Day ``d`` of January 2024 (1-based), at ``hour``."""
    return datetime(2024, 1, d, hour)


# Window length 10 days from midnight of the first sighting (Jan 1):
#   w0 [Jan 1, Jan 11), w1 [Jan 11, Jan 21), w2 [Jan 21, Jan 31) (cut short: the last
#   sighting is Jan 25, so w2 is not full).
# P1: d1 maid seen Jan 1-5 on ip A and Jan 20-25 on ip B -> active Jan 1-25: w0 w1 w2
#     c1 Jan 2-3 (w0), c2 Jan 12-14 (w1), c3 no evidence, ts Jan 22 (w2)
# P2: d2 maid Jan 5-6 (w0), c4 Jan 4-15 (w0 w1)
# P3: c5 neither evidence nor ts: in no window
# clusters K1 = {d1 c1 c2 c4}, K2 = {c3}, K3 = {d2}, K4 = {c5}
ROWS = [
    ("d1", 1, "maid", "K1", day(1)),
    ("c1", 1, "cookie", "K1", day(2)),
    ("c2", 1, "cookie", "K1", day(12)),
    ("c3", 1, "cookie", "K2", day(22)),
    ("d2", 2, "maid", "K3", day(5)),
    ("c4", 2, "cookie", "K1", day(4)),
    ("c5", 3, "cookie", "K4", None),
    ("f1", 1, "crm", "K1", day(3)),  # first-party: never in a window
]
IPS = [
    ("d1", "A", day(1), day(5)),
    ("d1", "B", day(20), day(25)),
    ("c1", "A", day(2), day(3)),
    ("c2", "A", day(12), day(14)),
    ("d2", "C", day(5), day(6)),
    ("c4", "C", day(4), day(15)),
]


@pytest.fixture(scope="module")
def windows(
    tmp_path_factory: pytest.TempPathFactory, lens_run: Callable[..., Any]
) -> dict[str, Any]:
    ds, raw, _ = lens_run(tmp_path_factory.mktemp("windows"), ROWS, IPS)
    return evaluate_run(raw, ds, threads=1, window_days=10)["anonymous_windows"]


def test_windows_hand_checked(windows):
    w = windows
    assert (w["window_days"], w["identifiers"], w["identifiers_without_activity"]) == (10, 7, 1)
    assert [(r["window"], r["start"], r["end"], r["full"]) for r in w["windows"]] == [
        (0, "2024-01-01", "2024-01-11", True),
        (1, "2024-01-11", "2024-01-21", True),
        (2, "2024-01-21", "2024-01-31", False),
    ]
    w0, w1, w2 = w["windows"]
    # w0: d1 c1 d2 c4; restricted clusters K1 {d1 c1 c4}, K3 {d2}; persons P1 {d1 c1},
    #   P2 {d2 c4}. d1: predicted {c1 c4}, true {c1}, right 1: 1.25 / (0.25 + 2) = 5/9;
    #   d2: predicted none, true {c4}: 0. Drawbridge (5/9 + 0) / 2 = 5/18.
    #   pairs: predicted 3 (K1), true 2, right 1 (d1 c1): P 1/3, R 1/2, F1 2/5
    assert w0["identifiers"] == 4 and w0["devices_scored"] == 2
    assert w0["drawbridge_f0_5"] == approx(5 / 18)
    assert (w0["tp_pairs"], w0["pred_pairs"], w0["true_pairs"]) == (1, 3, 2)
    assert w0["pair_f1"] == approx(2 / 5)
    # w1: d1 c2 c4 all in K1; P1 {d1 c2}, P2 {c4}. d1: predicted {c2 c4}, true {c2}: 5/9.
    #   pairs: predicted 3, true 1, right 1: P 1/3, R 1, F1 1/2
    assert w1["identifiers"] == 3 and w1["drawbridge_f0_5"] == approx(5 / 9)
    assert (w1["tp_pairs"], w1["pred_pairs"], w1["true_pairs"]) == (1, 3, 1)
    assert w1["pair_f1"] == approx(1 / 2)
    # w2: d1 (K1) and c3 (K2, active from its ts) of P1: d1 predicted none, true {c3}: 0;
    #   pairs: predicted 0, true 1
    assert w2["identifiers"] == 2 and w2["drawbridge_f0_5"] == 0.0
    assert (w2["tp_pairs"], w2["pred_pairs"], w2["true_pairs"]) == (0, 0, 1)
    # means over the full windows w0, w1 only
    m = w["mean"]
    assert w["mean_over"] == 2
    assert m["drawbridge_f0_5"] == approx((5 / 18 + 5 / 9) / 2)
    assert m["drawbridge_precision"] == approx((1 / 2 + 1 / 2) / 2)
    assert m["drawbridge_recall"] == approx((1 / 2 + 1) / 2)
    assert m["pair_precision"] == approx(1 / 3)
    assert m["pair_recall"] == approx((1 / 2 + 1) / 2)
    assert m["pair_f1"] == approx((2 / 5 + 1 / 2) / 2)


def test_whole_horizon_differs(tmp_path, lens_run):
    ds, raw, _ = lens_run(tmp_path, ROWS, IPS)
    r = evaluate_run(raw, ds, threads=1)
    # whole horizon: d1 predicted {c1 c2 c4}, true {c1 c2 c3}, right 2: 2.5 / 3.75 = 2/3;
    # d2: 0 -> 1/3. One 30-day window covers it all (not full: the mean uses it anyway).
    assert r["anonymous"]["person"]["drawbridge_f0_5"] == approx(1 / 3)
    w = r["anonymous_windows"]
    assert len(w["windows"]) == 1 and w["mean_over"] == 1 and not w["windows"][0]["full"]
    assert w["mean"]["drawbridge_f0_5"] == approx(1 / 3)


def test_no_activity_at_all(tmp_path, lens_run):
    ds, raw, _ = lens_run(tmp_path, [(*r[:4], None) for r in ROWS])
    r = evaluate_run(raw, ds, threads=1)
    assert r["anonymous_windows"] is None and r["anonymous"] is not None


# --- brute force ----------------------------------------------------------------------

cases = st.integers(min_value=2, max_value=10).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 2), min_size=n, max_size=n),  # persons
        st.lists(st.integers(0, 3), min_size=n, max_size=n),  # clusters
        st.lists(st.sampled_from(["cookie", "maid"]), min_size=n, max_size=n),
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 15)), min_size=n, max_size=n),
        st.sampled_from([3, 7, 10]),
    )
)


@pytest.mark.slow  # many random cases against a brute-force enumeration of pairs
@settings(max_examples=25, deadline=None)
@given(cases)
def test_windows_match_brute_force(
    tmp_path_factory: pytest.TempPathFactory, lens_run: Callable[..., Any], case: Any
) -> None:
    persons, clusters, sources, spans, width = case
    names = [f"r{i}" for i in range(len(persons))]
    start = datetime(2024, 3, 1)
    seen = {
        x: (start + timedelta(days=a), start + timedelta(days=a + b))
        for x, (a, b) in zip(names, spans, strict=True)
    }
    rows = [(x, persons[i], sources[i], f"K{clusters[i]}", None) for i, x in enumerate(names)]
    ips = [(x, "ip", *seen[x]) for x in names]
    ds, raw, _ = lens_run(tmp_path_factory.mktemp("w"), rows, ips)
    got = evaluate_run(raw, ds, threads=1, window_days=width)["anonymous_windows"]
    origin = min(s for s, _ in seen.values()).replace(hour=0)

    def active(k: int) -> list[int]:
        lo, hi = origin + timedelta(days=width * k), origin + timedelta(days=width * (k + 1))
        return [i for i, x in enumerate(names) if seen[x][0] < hi and seen[x][1] >= lo]

    by_k = {r["window"]: r for r in got["windows"]}
    last_k = max((e - origin).days // width for _, e in seen.values())
    assert set(by_k) == {k for k in range(last_k + 1) if active(k)}
    for k, row in by_k.items():
        ids = active(k)
        assert row["identifiers"] == len(ids)
        pairs = list(combinations(ids, 2))
        tp = sum(clusters[i] == clusters[j] and persons[i] == persons[j] for i, j in pairs)
        assert row["tp_pairs"] == tp
        assert row["pred_pairs"] == sum(clusters[i] == clusters[j] for i, j in pairs)
        assert row["true_pairs"] == sum(persons[i] == persons[j] for i, j in pairs)
        scores = []
        cookies = [i for i in ids if sources[i] == "cookie"]
        for d in (i for i in ids if sources[i] == "maid"):
            pred = {i for i in cookies if clusters[i] == clusters[d]}
            true = {i for i in cookies if persons[i] == persons[d]}
            if true:
                scores.append(1.25 * len(pred & true) / (0.25 * len(true) + len(pred)))
        want = sum(scores) / len(scores) if scores else None
        assert row["drawbridge_f0_5"] == (None if want is None else pytest.approx(want, abs=1e-12))
