"""Tables that explain a suite's errors, built from the evaluation stored in run records.

Each function takes the records of one dataset and the report's labelling function and
returns ``(header, rows)`` for a table, or ``None`` when no run carries the data. The
report (:mod:`bench.report.sections`) decides where they go; everything here is read
from the records (see :mod:`bench.metrics.evaluate` for the definitions), nothing is
recomputed. Numbers are formatted by :func:`bench.report.format.format_number`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.metrics import aggregate
from bench.report.format import format_number

__all__ = [
    "business_table",
    "first_per_label",
    "hazard_caption",
    "hazard_table",
    "signed",
    "stage_table",
    "variance_table",
]

Table = tuple[tuple[str, ...], list[tuple[str, ...]]]


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == "ok"]


def first_per_label(
    records: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]
) -> dict[str, dict[str, Any]]:
    """The first repeat of each matcher label among the finished runs, by label.

    Repeats evaluate alike in the error-explaining tables; the variance table covers
    their spread.
    """
    out: dict[str, dict[str, Any]] = {}
    for r in sorted(_ok(records), key=lambda r: r.get("repeat", 0)):
        out.setdefault(label(r), r)
    return dict(sorted(out.items()))


def signed(value: float | None) -> str:
    """A change with its sign (``+0.096``, ``-0.021``, ``0.000``); ``-`` when unknown."""
    if value is None:
        return "-"
    text = f"{value:+.3f}"
    return "0.000" if text in ("+0.000", "-0.000") else text


def _negated(value: float | None) -> float | None:
    # stored as a loss (threshold-stage precision minus final precision); shown as a change
    return None if value is None else -value


def stage_table(
    records: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]
) -> Table | None:
    """Where recall is lost: candidates -> threshold -> clustering (matchers with pairs)."""
    rows = []
    for name, r in first_per_label(records, label).items():
        cand = (r.get("candidates") or {}).get("person")
        if not cand:
            continue
        rows.append(
            (
                name,
                format_number(cand.get("candidate_pairs")),
                format_number(cand.get("pair_completeness")),
                format_number(cand.get("reduction_ratio"), 6),
                format_number(cand.get("threshold")),
                format_number(cand.get("recall_lost_at_candidates")),
                format_number(cand.get("recall_lost_at_threshold")),
                signed(cand.get("recall_gained_at_clustering")),
                signed(_negated(cand.get("precision_lost_at_clustering"))),
                format_number((r.get("person") or {}).get("recall")),
            )
        )
    if not rows:
        return None
    header = (
        "matcher",
        "candidate pairs",
        "pair completeness",
        "reduction ratio",
        "threshold",
        "recall lost at candidates",
        "recall lost at threshold",
        "recall change at clustering",
        "precision change at clustering",
        "final recall",
    )
    return header, rows


def hazard_table(
    records: list[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    *,
    kind: str = "false_merge_pairs",
) -> Table | None:
    """Error pairs per hazard tag (``kind``: false or missed merges), a column per matcher."""
    per_matcher: dict[str, dict[str, dict[str, Any]]] = {}
    for name, r in first_per_label(records, label).items():
        rows = [h for h in (r.get("hazards") or []) if h.get("level") == "person"]
        if rows:
            per_matcher[name] = {h["hazard"]: h for h in rows}
    if not per_matcher:
        return None
    hazards = sorted({h for m in per_matcher.values() for h in m}, key=lambda h: (h != "(all)", h))
    header = ("hazard", "tagged records", *per_matcher)
    out = []
    for hz in hazards:
        tagged = next(m[hz] for m in per_matcher.values() if hz in m).get("records")
        cells = [format_number((m.get(hz) or {}).get(kind)) for m in per_matcher.values()]
        out.append((hz, format_number(tagged), *cells))
    return header, out


_HAZARD_KIND = {
    "false_merge_pairs": (
        "Record pairs put in one cluster that belong to different persons, counted when "
        "either record carries the planted hazard tag; `(all)` counts every false merge.",
        "false merges",
    ),
    "missed_merge_pairs": (
        "Record pairs of one person left in different clusters, counted when either "
        "record carries the hazard tag; `(all)` counts every missed merge.",
        "missed merges",
    ),
}


def hazard_caption(
    records: list[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    *,
    kind: str = "false_merge_pairs",
    skip: Callable[[dict[str, Any]], bool] = lambda r: False,
) -> str:
    """The caption of :func:`hazard_table`: its definition, then which tag leads, per matcher.

    The leading tag of a matcher is the one with the most pairs of ``kind`` (``(all)``
    aside); matchers for which ``skip`` is true (baselines) are not summarised. A pair
    counts under each tag either record carries, so the tags' counts overlap.
    """
    definition, what = _HAZARD_KIND[kind]
    leaders: dict[str, list[str]] = defaultdict(list)
    none: list[str] = []
    skipped = 0
    for name, r in first_per_label(records, label).items():
        if skip(r):
            skipped += 1
            continue
        rows = [
            h
            for h in r.get("hazards") or []
            if h.get("level") == "person" and h.get("hazard") != "(all)"
        ]
        if not rows:
            continue
        top = max(rows, key=lambda h: (h.get(kind) or 0, str(h.get("hazard"))))
        if not top.get(kind):
            none.append(name)
        else:
            leaders[str(top["hazard"])].append(name)
    parts = [f"`{hz}` for {', '.join(names)}" for hz, names in sorted(leaders.items())]
    text = definition
    if len(leaders) == 1 and not none:
        every = "every matcher" + (" but the baselines" if skipped else "")
        text += f" The tag with most {what} is `{next(iter(leaders))}` for {every}."
    elif parts:
        text += f" The tag with most {what}: " + "; ".join(parts) + "."
    if none:
        text += f" No tagged {what} for {', '.join(none)}."
    return text


def business_table(
    records: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]
) -> Table | None:
    """What resolution quality means for a customer base."""
    rows = []
    for name, r in first_per_label(records, label).items():
        b = (r.get("business") or {}).get("person")
        if not b:
            continue
        rows.append(
            (
                name,
                format_number(b.get("entity_count_inflation")),
                format_number(b.get("wrong_entity_share")),
                f"{format_number(b.get('top_k_found'))} of {format_number(b.get('top_k_effective'))}"
                if b.get("top_k_effective")
                else "-",
            )
        )
    if not rows:
        return None
    return (
        "matcher",
        "customer-count inflation",
        "records on a wrong person",
        "top-k customers found",
    ), rows


def variance_table(
    records: list[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    *,
    metric: str = "person.bcubed_f1",
) -> Table | None:
    """Mean, sd and 95% interval over repeats, and which differences are real.

    Shown only when some matcher configuration has at least two ok runs. The best mean
    is compared with every other configuration; a difference is called only when the
    two intervals do not overlap (:func:`bench.metrics.aggregate.compare`).
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _ok(records):
        groups[label(r)].append(r)
    if not any(len(rs) > 1 for rs in groups.values()):
        return None
    stats = {
        name: aggregate.aggregate(rs, metrics=(metric,), dataset_key="name")[0]
        for name, rs in sorted(groups.items())
    }
    best = max(stats, key=lambda n: stats[n]["mean"] if stats[n]["mean"] is not None else -1)
    rows = []
    for name, s in stats.items():
        verdict = ""
        if name != best:
            cmp = aggregate.compare(
                aggregate.aggregate(groups[best], metrics=(metric,), dataset_key="name"),
                aggregate.aggregate(groups[name], metrics=(metric,), dataset_key="name"),
            )
            verdict = cmp[0]["verdict"] if cmp else ""
            verdict = {"a>b": f"below {best}", "a<b": f"above {best}"}.get(verdict, verdict)
        interval = (
            f"[{format_number(s['ci_low'])}, {format_number(s['ci_high'])}]"
            if s.get("ci_low") is not None
            else "-"
        )
        rows.append(
            (
                name,
                str(s["n"]),
                format_number(s["mean"]),
                format_number(s["std"]),
                interval,
                verdict,
            )
        )
    header = ("matcher", "runs", f"mean {metric}", "sd", "95% interval", "vs best")
    return header, rows
