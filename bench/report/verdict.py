"""Which runs a report may recommend: over-merging and baselines are named, never ranked first.

A matcher that puts strangers together can score a high B-cubed F1 (each record of a
large true person is "completed" by the giant cluster it sits in) while its pairwise
precision collapses. The report therefore ranks on pairwise F1 (which counts every
wrongly merged pair) after setting aside runs that over-merge by the rule below, and
never calls a baseline (lens ``baseline``: a reference point that resolves nothing on
purpose) best or fastest.

The over-merge rule: a run over-merges when its pairwise precision is below
:data:`OVERMERGE_MIN_PRECISION` (most of the pairs it asserts are wrong) or its largest
cluster holds more than :data:`OVERMERGE_LARGEST_FACTOR` times the records of the
largest true person.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.report.records import matcher_lens, person

__all__ = [
    "OVERMERGE_LARGEST_FACTOR",
    "OVERMERGE_MIN_PRECISION",
    "OVERMERGE_RULE",
    "best_by",
    "contenders",
    "is_baseline",
    "overmerge_reason",
    "rank_key",
]

#: Below this pairwise precision most asserted same-person pairs are wrong: over-merging.
OVERMERGE_MIN_PRECISION = 0.5
#: A largest cluster this many times the largest true person's records is over-merging.
OVERMERGE_LARGEST_FACTOR = 10.0
#: The rule as the report states it.
OVERMERGE_RULE = (
    f"pairwise precision below {OVERMERGE_MIN_PRECISION:g}, or a largest cluster more than "
    f"{OVERMERGE_LARGEST_FACTOR:g}x the largest true person"
)


def is_baseline(rec: Mapping[str, Any]) -> bool:
    """True when the run's matcher is a baseline (lens ``baseline``)."""
    return matcher_lens(rec.get("matcher") or {}) == "baseline"


def overmerge_reason(rec: Mapping[str, Any]) -> str | None:
    """Why a run over-merges (``None`` when it does not, or has no person metrics).

    Returns
    -------
    str or None
        E.g. ``"pairwise precision 0.096 < 0.5; largest cluster 1,709 records vs 35 in
        the largest true person"``.
    """
    m = person(rec)
    reasons = []
    precision = m.get("precision")
    if precision is not None and precision < OVERMERGE_MIN_PRECISION:
        reasons.append(f"pairwise precision {precision:.3f} < {OVERMERGE_MIN_PRECISION:g}")
    largest, true_largest = m.get("largest_cluster"), m.get("largest_entity")
    if largest and true_largest and largest > OVERMERGE_LARGEST_FACTOR * true_largest:
        reasons.append(
            f"largest cluster {int(largest):,} records vs {int(true_largest):,} in the "
            "largest true person"
        )
    return "; ".join(reasons) or None


def rank_key(rec: Mapping[str, Any]) -> tuple[int, float, float]:
    """Sort key (higher is better): not over-merging first, then pairwise F1, B-cubed F1."""
    m = person(rec)
    return (
        0 if overmerge_reason(rec) else 1,
        float(m.get("f1") or 0.0),
        float(m.get("bcubed_f1") or 0.0),
    )


def contenders(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished runs a report may call best or fastest: no baseline, no over-merging."""
    return [
        r
        for r in runs
        if r.get("status") == "ok" and not is_baseline(r) and not overmerge_reason(r)
    ]


def best_by(runs: Sequence[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The best of ``runs`` (not empty) by ``key``; a supervised run only when no other ran.

    A supervised run is scored on its held-out persons only, so it is not ranked against
    runs scored on everyone.
    """
    unsupervised = [r for r in runs if not r.get("training")]
    return max(unsupervised or runs, key=key)
