"""Tests of bench.metrics.aggregate: repeats, t intervals, comparison, the power-law fit."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.metrics import aggregate as agg
from bench.metrics.aggregate import (
    aggregate,
    compare,
    fit_power_law,
    match_seconds,
    median_present,
    metric_value,
    t_quantile,
)


def rec(matcher: str, f1: float | None, *, fp: str = "sha256:a", status: str = "ok") -> dict:
    return {
        "status": status,
        "dataset": {"name": "tiny", "fingerprint": fp},
        "matcher": {"label": matcher},
        "person": {"f1": f1, "precision": 1.0},
        "timings": {"match": 2.0},
    }


def test_mean_std_and_t_interval_by_hand():
    rows = aggregate(
        [rec("A()", 0.1), rec("A()", 0.2), rec("A()", 0.3), rec("A()", None, status="error")],
        metrics=["person.f1"],
    )
    (row,) = rows
    # mean 0.2; sample std sqrt(((-.1)^2 + 0 + .1^2) / 2) = 0.1; t(0.975, 2) = 4.3027
    assert (row["n"], row["runs"]) == (3, 3)  # the failed run is not a repeat
    assert row["mean"] == pytest.approx(0.2)
    assert row["std"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert row["ci_low"] == pytest.approx(0.2 - half)
    assert row["ci_high"] == pytest.approx(0.2 + half)
    assert row["direction"] == "higher"


def test_single_value_has_no_interval_and_groups_split():
    rows = aggregate(
        [rec("A()", 0.5), rec("B()", 0.4), rec("A()", 0.7, fp="sha256:b")],
        metrics=["person.f1"],
    )
    assert [(r["dataset"], r["matcher"], r["n"]) for r in rows] == [
        ("sha256:a", "A()", 1),
        ("sha256:a", "B()", 1),
        ("sha256:b", "A()", 1),
    ]
    assert rows[0]["std"] is None and rows[0]["ci_low"] is None
    pooled = aggregate(
        [rec("A()", 0.5), rec("A()", 0.7, fp="sha256:b")],
        metrics=["person.f1"],
        dataset_key="name",
    )
    assert pooled[0]["n"] == 2 and pooled[0]["dataset"] == "tiny"


def test_compare_calls_differences_only_when_intervals_separate():
    a = aggregate([rec("A()", v) for v in (0.90, 0.91, 0.92)], metrics=["person.f1"])
    b = aggregate([rec("B()", v) for v in (0.50, 0.52, 0.54)], metrics=["person.f1"])
    c = aggregate([rec("C()", v) for v in (0.80, 0.91, 0.99)], metrics=["person.f1"])
    (ab,) = compare(a, b)
    assert (ab["verdict"], ab["better"], ab["separated"]) == ("a>b", "a", True)
    assert ab["diff"] == pytest.approx(0.91 - 0.52)
    (ac,) = compare(a, c)
    assert (ac["verdict"], ac["better"]) == ("no difference", None)
    one = aggregate([rec("D()", 0.1)], metrics=["person.f1"])
    assert compare(a, one)[0]["verdict"] == "insufficient data"


def test_lower_is_better_and_deterministic_point_intervals():
    a = aggregate([rec("A()", 0.5) for _ in range(3)], metrics=["timings.match", "person.f1"])
    fast = [
        {**r, "timings": {"match": 1.0}}
        for r in (rec("B()", 0.5), rec("B()", 0.5), rec("B()", 0.5))
    ]
    b = aggregate(fast, metrics=["timings.match", "person.f1"])
    by_metric = {r["metric"]: r for r in compare(a, b)}
    # identical repeats: std 0, point intervals; 2.0 s vs 1.0 s separate, lower is better
    assert by_metric["timings.match"]["verdict"] == "a>b"
    assert by_metric["timings.match"]["better"] == "b"
    assert by_metric["person.f1"]["verdict"] == "no difference"


def test_metric_value_paths():
    r: dict[str, Any] = {"a": {"b": 1, "c": None, "d": True, "e": float("nan")}}
    assert metric_value(r, "a.b") == 1.0
    assert metric_value(r, "a.c") is None
    assert metric_value(r, "a.d") is None
    assert metric_value(r, "a.e") is None
    assert metric_value(r, "a.x.y") is None


def test_t_quantile_fallback_matches_scipy(monkeypatch):
    scipy_values = [t_quantile(0.975, df) for df in (1, 2, 5, 30, 60, 200)]
    for df, v in zip((1, 2, 5, 30), scipy_values, strict=False):
        assert agg._T975[df - 1] == pytest.approx(v, abs=1e-8)
    # beyond the table the Cornish-Fisher expansion is within 1e-4
    import builtins

    real_import = builtins.__import__

    def no_scipy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert t_quantile(0.975, 5) == pytest.approx(scipy_values[2], abs=1e-8)
    assert t_quantile(0.975, 60) == pytest.approx(scipy_values[4], abs=1e-4)
    assert t_quantile(0.975, 200) == pytest.approx(scipy_values[5], abs=1e-4)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile(0.975, 0)


def test_fit_recovers_exponent() -> None:
    ns = [1e4, 1e5, 1e6, 1e7]
    fit = fit_power_law(ns, [3e-6 * n**1.2 for n in ns])
    assert fit is not None
    assert fit.b == pytest.approx(1.2)
    assert fit.a == pytest.approx(3e-6)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.predict(1e8) == pytest.approx(3e-6 * 1e8**1.2)


def test_fit_least_squares_with_noise() -> None:
    # log-log points (0, 0), (1, 1.1), (2, 1.9) in base e: slope 0.95 by least squares
    ns = [1.0, math.e, math.e**2]
    ts = [1.0, math.exp(1.1), math.exp(1.9)]
    fit = fit_power_law(ns, ts)
    assert fit is not None
    assert fit.b == pytest.approx(0.95)
    assert 0.9 < (fit.r2 or 0) < 1.0


def test_fit_needs_two_sizes_and_ignores_failures() -> None:
    assert fit_power_law([1e4, 1e4], [1.0, 2.0]) is None
    assert fit_power_law([1e4, 1e5], [1.0, 0.0]) is None  # a failed run has no time
    fit = fit_power_law([1e4, 1e5, 1e6], [1.0, 0.0, 100.0])
    assert fit is not None
    assert fit.b == pytest.approx(1.0)


def test_fit_recovers_a_quadratic_exponent() -> None:
    ns = [1e3, 1e4, 1e5]
    fit = fit_power_law(ns, [n**2 * 1e-6 for n in ns])
    assert fit is not None and fit.b == pytest.approx(2.0)


def test_median_present_and_match_seconds() -> None:
    assert median_present([None, 3, 1, None, 2]) == 2
    assert median_present([None]) is None
    assert match_seconds({"timings": {"fit": 1.5, "match": 2.0}}) == 3.5
    assert match_seconds({"timings": {"match": 2.0}}) == 2.0
    assert match_seconds({"timings": {"fit": 1.5}}) is None
