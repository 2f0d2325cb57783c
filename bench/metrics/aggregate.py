"""Variance over repeats: mean, standard deviation and a t interval per metric.

Run records are grouped by (dataset, matcher label); the repeats (and seeds) of a group
are its sample. For each chosen metric (a dotted path into the record, e.g.
``"person.f1"`` or ``"business.person.top_k_recall"``) a group gets ``n`` (records with a
value), ``mean``, ``std`` (sample standard deviation, ``n - 1`` in the denominator) and
the two-sided ``confidence`` interval ``mean +- t(1 - a/2, n - 1) * std / sqrt(n)``
(Student's t). With one value there is no interval (``None``). A deterministic matcher
repeated gives ``std = 0`` and a point interval.

:func:`compare` calls a difference between two groups only when their intervals do not
overlap: a conservative rule (non-overlap of 95% intervals implies a difference at a
level well below 5%), chosen because it needs nothing but the intervals the report
already shows.

Two helpers over run records serve both the runner's scaling sweep and the report:
:func:`match_seconds` (the time a run's matcher took) and :func:`fit_power_law` (the
cost exponent ``b`` of ``time = a * n^b``); :func:`median_present` is the median over
repeats that ignores missing values.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bench.metrics.core import METRICS

__all__ = [
    "DEFAULT_METRICS",
    "PowerFit",
    "aggregate",
    "compare",
    "fit_power_law",
    "match_seconds",
    "median_present",
    "metric_value",
    "t_quantile",
]

log = logging.getLogger(__name__)

#: Metrics aggregated when none are named.
DEFAULT_METRICS: tuple[str, ...] = (
    "person.precision",
    "person.recall",
    "person.f1",
    "person.bcubed_f1",
    "household.f1",
    "household.bcubed_f1",
    "timings.match",
    "throughput.records_per_s",
    "peak_rss_bytes",
)

#: Two-sided 95% Student-t quantiles t(0.975, df) for df = 1..30: used when scipy is
#: not importable (it comes with recordlinkage and scikit-learn, so normally it is).
_T975 = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)

#: Metric path suffix -> better direction, for timings and resources not in METRICS.
_DIRECTIONS: dict[str, Literal["higher", "lower", "neutral"]] = {
    "records_per_s": "higher",
    "peak_rss_bytes": "lower",
}


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom.

    Uses scipy when available; otherwise the tabulated 0.975 quantiles (df <= 30) or,
    beyond, the Cornish-Fisher expansion around the normal quantile (error < 1e-4).
    """
    if df < 1:
        msg = f"degrees of freedom must be >= 1, got {df}"
        raise ValueError(msg)
    try:
        from scipy.stats import t as student_t
    except ImportError:  # pragma: no cover - scipy is a transitive dependency
        student_t = None
    if student_t is not None:
        return float(student_t.ppf(p, df))
    if p == 0.975 and df <= len(_T975):
        return _T975[df - 1]
    z = _normal_quantile(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def _normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on ``erf`` (no scipy needed)."""
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def metric_value(record: Mapping[str, Any], path: str) -> float | None:
    """The value at dotted ``path`` in a run record, ``None`` if absent or not a number."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _direction(path: str) -> Literal["higher", "lower", "neutral"]:
    last = path.rsplit(".", 1)[-1]
    if last in METRICS:
        return METRICS[last].direction
    if path.startswith("timings."):
        return "lower"
    return _DIRECTIONS.get(last, "neutral")


def _summary(values: Sequence[float], confidence: float) -> dict[str, Any]:
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci_low": None, "ci_high": None}
    mean = math.fsum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def aggregate(
    records: Iterable[Mapping[str, Any]],
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    dataset_key: Literal["fingerprint", "name"] = "fingerprint",
    confidence: float = 0.95,
    statuses: Sequence[str] = ("ok",),
) -> list[dict[str, Any]]:
    """Mean, standard deviation and t interval per (dataset, matcher, metric).

    Parameters
    ----------
    records
        Run records (e.g. :func:`bench.run.results.load_records`).
    metrics
        Dotted paths into a record.
    dataset_key
        Group datasets by ``"fingerprint"`` (repeats on the same bytes) or by ``"name"``
        (also pools datasets generated with different seeds under one name).
    confidence
        Two-sided level of the interval.
    statuses
        Only records with these statuses are used.

    Returns
    -------
    list of dict
        Sorted by dataset, matcher, metric order; keys ``dataset``, ``dataset_name``,
        ``matcher`` (the label), ``metric``, ``direction``, ``n``, ``runs`` (records in
        the group, with or without a value), ``mean``, ``std``, ``ci_low``, ``ci_high``,
        ``confidence``, ``values`` (in record order).
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    names: dict[str, str] = {}
    for rec in records:
        if rec.get("status") not in statuses:
            continue
        ds = rec.get("dataset") or {}
        name = str(ds.get("name"))
        key = str(ds.get("fingerprint") or name) if dataset_key == "fingerprint" else name
        names[key] = name
        label = str((rec.get("matcher") or {}).get("label"))
        groups.setdefault((key, label), []).append(rec)
    rows = []
    for (key, label), recs in sorted(groups.items()):
        for path in metrics:
            values = [v for v in (metric_value(r, path) for r in recs) if v is not None]
            rows.append(
                {
                    "dataset": key,
                    "dataset_name": names[key],
                    "matcher": label,
                    "metric": path,
                    "direction": _direction(path),
                    "runs": len(recs),
                    **_summary(values, confidence),
                    "confidence": confidence,
                    "values": values,
                }
            )
    return rows


def compare(
    a_rows: Iterable[Mapping[str, Any]], b_rows: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Compare two sets of :func:`aggregate` rows metric by metric.

    Rows are matched on (``dataset``, ``metric``); typically ``a_rows`` and ``b_rows``
    are the rows of two matchers. A difference is called only when both intervals exist
    and do not overlap.

    Returns
    -------
    list of dict
        One per matched (dataset, metric): ``dataset``, ``metric``, ``a_matcher``,
        ``b_matcher``, ``a_mean``, ``b_mean``, ``diff`` (a - b), ``a_ci``, ``b_ci``
        (``[low, high]`` or ``None``), ``separated`` (bool), ``verdict``: ``"a>b"``,
        ``"a<b"``, ``"no difference"`` (intervals overlap) or ``"insufficient data"``
        (an interval is missing: fewer than two values), and ``better``: ``"a"``,
        ``"b"`` or ``None`` (no difference called, or a neutral metric).
    """
    b_index = {(r["dataset"], r["metric"]): r for r in b_rows}
    out = []
    for a in a_rows:
        b = b_index.get((a["dataset"], a["metric"]))
        if b is None:
            continue
        a_ci = None if a["ci_low"] is None else [a["ci_low"], a["ci_high"]]
        b_ci = None if b["ci_low"] is None else [b["ci_low"], b["ci_high"]]
        if a_ci is None or b_ci is None:
            verdict, separated = "insufficient data", False
        elif a_ci[0] > b_ci[1]:
            verdict, separated = "a>b", True
        elif b_ci[0] > a_ci[1]:
            verdict, separated = "a<b", True
        else:
            verdict, separated = "no difference", False
        direction = a.get("direction") or _direction(a["metric"])
        better = None
        if separated and direction != "neutral":
            a_higher = verdict == "a>b"
            better = "a" if a_higher == (direction == "higher") else "b"
        diff = None if a["mean"] is None or b["mean"] is None else a["mean"] - b["mean"]
        out.append(
            {
                "dataset": a["dataset"],
                "metric": a["metric"],
                "a_matcher": a["matcher"],
                "b_matcher": b["matcher"],
                "a_mean": a["mean"],
                "b_mean": b["mean"],
                "diff": diff,
                "a_ci": a_ci,
                "b_ci": b_ci,
                "separated": separated,
                "verdict": verdict,
                "better": better,
            }
        )
    return out


def median_present(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None; None when there is none."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def match_seconds(record: Mapping[str, Any]) -> float | None:
    """Seconds of fit + match of a run record; None when the run did not get that far."""
    timings = record.get("timings") or {}
    if "match" not in timings:
        return None
    return float(timings.get("fit") or 0.0) + float(timings.get("match") or 0.0)


@dataclass(frozen=True)
class PowerFit:
    """``time = a * n^b`` fitted on log-log; ``r2`` is the fit's R² in log space."""

    a: float
    b: float
    r2: float | None
    points: tuple[tuple[float, float], ...]

    def predict(self, n: float) -> float:
        """Fitted time at ``n`` records."""
        return self.a * n**self.b


def fit_power_law(ns: Sequence[float], ts: Sequence[float]) -> PowerFit | None:
    """Least squares of log(t) on log(n). None with fewer than two distinct positive sizes.

    Points with a non-positive size or time are ignored (a failed run has no time).
    """
    pts = sorted((n, float(t)) for n, t in zip(ns, ts, strict=True) if n > 0 and t > 0)
    if len({n for n, _ in pts}) < 2:
        return None
    xs = [math.log(n) for n, _ in pts]
    ys = [math.log(t) for _, t in pts]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sxx
    intercept = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (intercept + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else None
    return PowerFit(a=math.exp(intercept), b=b, r2=r2, points=tuple(pts))
