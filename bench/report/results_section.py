"""The report's "Results" section: one table of person-level metrics per dataset.

Each row is a matcher configuration and status (repeats shown as their median). Where
the dataset has a supervised run, a note says what it learnt from, and a second table
scores every matcher on the same held-out persons.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from bench.metrics.aggregate import match_seconds, median_present
from bench.report.document import Block
from bench.report.format import format_number
from bench.report.records import Results, dataset_key, person
from bench.report.style import LENS_STYLES
from bench.report.verdict import OVERMERGE_RULE, is_baseline, overmerge_reason, rank_key

__all__ = [
    "HELDOUT_COLUMNS",
    "RESULT_COLUMNS",
    "STATUS_ORDER",
    "results_heading",
    "results_section",
]

#: Statuses in the order rows and counts list them.
STATUS_ORDER = {"ok": 0, "timeout": 1, "error": 2, "skipped": 3}

RESULT_COLUMNS = (
    "matcher",
    "lens",
    "status",
    "flag",
    "precision",
    "recall",
    "F1",
    "B-cubed F1",
    "clusters / entities",
    "largest cluster / true",
    "records/s",
    "match s",
    "peak RSS MiB",
)

HELDOUT_COLUMNS = ("matcher", "lens", "records", "precision", "recall", "F1", "B-cubed F1")

_INTRO = (
    "Person-level metrics. Precision, recall and F1 count record pairs; B-cubed F1 "
    "averages per record. Lens: `baseline` reference points that resolve nothing on "
    "purpose, `det` deterministic (exact keys, rule cascades, login bridges), `prob` "
    "probabilistic (Splink, recordlinkage, device graphs), `hybrid` both. Rows are "
    "ranked by pairwise F1, runs that over-merge last among the finished ones; the flag "
    f"`over-merges` marks them ({OVERMERGE_RULE}). `largest cluster / true` is the "
    "largest predicted cluster beside the largest true person."
)
_UNDECLARED = (
    " Runs stored before matchers declared their lens are placed by their tags: `prob` "
    "when they emit scored pairs, else `det`."
)
_TIMING = (
    " records/s and match s cover fit + match (not loading or evaluation); peak RSS is "
    "the run's whole process tree. Rows with `(xN)` are medians over N repeats."
)


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


def _repeats(label: str, runs: list[dict[str, Any]]) -> str:
    """The label, with ``(xN)`` when the row is the median of N repeats."""
    return label + (f" (x{len(runs)})" if len(runs) > 1 else "")


def results_heading(ds: dict[str, Any]) -> str:
    """Heading of the results table of a dataset (findings link to it)."""
    return f"Results: {ds.get('name')} ({format_number(int(ds.get('n_records') or 0))} records)"


def results_section(results: Results, datasets: list[dict[str, Any]]) -> list[Block]:
    """The "Results" heading, its explanation and one table (and notes) per dataset."""
    undeclared = any("lens" not in (r.get("matcher") or {}) for r in results.records)
    blocks = [
        Block("h2", "Results"),
        Block("p", _INTRO + (_UNDECLARED if undeclared else "") + _TIMING),
    ]
    for ds in datasets:
        recs = [r for r in results.records if dataset_key(r) == ds["_fp"]]
        blocks.append(Block("h3", results_heading(ds)))
        blocks.append(
            Block(
                "table",
                header=RESULT_COLUMNS,
                align=("l", "l", "l", "l", *("r",) * (len(RESULT_COLUMNS) - 4)),
                rows=tuple(_result_rows(results, recs)),
            )
        )
        blocks.extend(_training_note(results, recs))
    return blocks


def _result_rows(results: Results, records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per (matcher configuration, status); repeats shown as their median."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(results.label(r), str(r.get("status")))].append(r)

    def sort_key(item: tuple[tuple[str, str], list[dict[str, Any]]]) -> tuple:
        # finished runs first; among them baselines last, over-merging ones just before
        (label, status), rs = item
        rank = rank_key(rs[0])
        return (STATUS_ORDER.get(status, 9), is_baseline(rs[0]), -rank[0], -rank[1], label)

    return [
        _result_row(results, label, status, rs)
        for (label, status), rs in sorted(groups.items(), key=sort_key)
    ]


def _result_row(
    results: Results, label: str, status: str, rs: list[dict[str, Any]]
) -> tuple[str, ...]:
    def med(key: str) -> float | None:
        return median_present([person(r).get(key) for r in rs])

    person_ok = status == "ok"
    clusters, entities = med("n_clusters"), med("n_entities")
    rps = median_present([(r.get("throughput") or {}).get("records_per_s") for r in rs])
    match_s = median_present([match_seconds(r) for r in rs])
    peak = median_present([r.get("peak_rss_bytes") for r in rs])
    flag = "over-merges" if person_ok and overmerge_reason(rs[0]) else ""
    largest, true_largest = med("largest_cluster"), med("largest_entity")
    return (
        _repeats(label, rs),
        LENS_STYLES[results.lens(rs[0])].short,
        status,
        "baseline" if is_baseline(rs[0]) else flag,
        *(
            format_number(med(key)) if person_ok else "-"
            for key in ("precision", "recall", "f1", "bcubed_f1")
        ),
        f"{clusters:,.0f} / {entities:,.0f}"
        if person_ok and clusters is not None and entities is not None
        else "-",
        f"{largest:,.0f} / {true_largest:,.0f}"
        if person_ok and largest is not None and true_largest is not None
        else (f"{largest:,.0f}" if person_ok and largest is not None else "-"),
        f"{rps:,.0f}" if rps else "-",
        f"{match_s:.3g}" if match_s is not None and person_ok else "-",
        f"{peak / 2**20:,.0f}" if peak else "-",
    )


def _training_note(results: Results, records: list[dict[str, Any]]) -> list[Block]:
    """Say which rows were scored without their training sample (supervised matchers)."""
    trained: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("status") == "ok" and rec.get("training"):
            trained.setdefault(results.label(rec), []).append(rec["training"])
    if not trained:
        return []
    parts = []
    for label, samples in sorted(trained.items()):
        persons, recs = (
            median_present([b.get(key) for b in samples]) for key in ("persons", "records")
        )
        parts.append(
            f"`{label}` learnt from the labels of {format_number(_whole(persons))} persons "
            f"({format_number(_whole(recs))} records)"
        )
    share = format_number(100 * float(next(iter(trained.values()))[0].get("fraction") or 0), 0)
    blocks = [
        Block(
            "p",
            "Supervised: "
            + "; ".join(parts)
            + f" (a {share}% sample of persons drawn with the run's seed). Those records are "
            "left out of the row's metrics (marked `(held-out)`), so it is scored on "
            "fewer persons than the rows beside it and is not ranked against them in the "
            "summary.",
        )
    ]
    return blocks + _heldout_blocks(results, records)


def _heldout_blocks(results: Results, records: list[dict[str, Any]]) -> list[Block]:
    """The same-persons table, and which matchers it lacks (stored before it existed)."""
    blocks = []
    rows = _heldout_rows(results, records)
    if rows:
        blocks += [
            Block(
                "p",
                "The same persons for everyone: each matcher's output restricted to the "
                "held-out persons of its seed (the records a supervised run of that seed "
                "is scored on), person level.",
            ),
            Block("table", header=HELDOUT_COLUMNS, align=("l", "l", *("r",) * 5), rows=rows),
        ]
    missing = sorted(
        {
            results.label(r)
            for r in records
            if r.get("status") == "ok" and not (r.get("heldout") or {}).get("person")
        }
    )
    if missing:
        blocks.append(
            Block(
                "p",
                "Not in that comparison yet (stored before the suite had a supervised "
                f"matcher): {', '.join(f'`{m}`' for m in missing)}; `idbench run --recompute` "
                "adds their held-out metrics from the stored outputs.",
            )
        )
    return blocks


def _heldout_rows(results: Results, records: list[dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    """One row per matcher configuration with held-out metrics (medians over repeats)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        if rec.get("status") == "ok" and (rec.get("heldout") or {}).get("person"):
            groups[results.label(rec)].append(rec)

    def med(rs: list[dict[str, Any]], key: str) -> float | None:
        return median_present([r["heldout"]["person"].get(key) for r in rs])

    ordered = sorted(groups.items(), key=lambda kv: (-(med(kv[1], "bcubed_f1") or -1), kv[0]))
    return tuple(
        (
            _repeats(label, rs),
            LENS_STYLES[results.lens(rs[0])].short,
            format_number(_whole(med(rs, "n_records"))),
            *(format_number(med(rs, k)) for k in ("precision", "recall", "f1", "bcubed_f1")),
        )
        for label, rs in ordered
    )
