"""Pairs by class in the report: a table per dataset with both lenses, and its finding.

The evaluation scores first-party pairs, anonymous-with-first-party pairs and pairs of
two anonymous identifiers apart (:mod:`bench.metrics.segments`). :func:`segment_table`
shows the three per run; :func:`segment_sentence` says which lens leads on first-party
pairs (by F1) and which finds more anonymous pairs (by recall), as the numbers say.
Each lens is represented per class by its best run on that class among the runs the
report may recommend (:func:`~bench.report.verdict.contenders`: no baseline, no
over-merging run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report.document import link
from bench.report.format import format_number
from bench.report.tables import Table, first_per_label
from bench.report.verdict import best_by, contenders

__all__ = ["SEGMENTS_TITLE", "segment_sentence", "segment_table", "segments_heading"]

#: Title of the pairs-by-class table (its heading is ``<title>: <dataset>``).
SEGMENTS_TITLE = "Pairs by class"

#: Pair classes in column order, with the words the header uses.
_CLASSES = (
    ("first_party", "first-party"),
    ("anonymous_first_party", "anonymous with first-party"),
    ("anonymous", "anonymous with anonymous"),
)

Label = Callable[[dict[str, Any]], str]


def segments_heading(name: str) -> str:
    """Heading of the pairs-by-class table of dataset ``name``."""
    return f"{SEGMENTS_TITLE}: {name}"


def _segment(rec: dict[str, Any], cls: str) -> dict[str, Any]:
    """A run's person-level metrics of pair class ``cls`` (empty without segments)."""
    return ((rec.get("segments") or {}).get("person") or {}).get(cls) or {}


def segment_table(records: list[dict[str, Any]], label: Label) -> Table | None:
    """Precision, recall and F1 per pair class, a row per run (None without segments)."""
    rows = [
        (
            name,
            *(
                format_number(_segment(r, cls).get(k))
                for cls, _ in _CLASSES
                for k in ("precision", "recall", "f1")
            ),
        )
        for name, r in first_per_label(records, label).items()
        if (r.get("segments") or {}).get("person")
    ]
    if not rows:
        return None
    header = (
        "matcher",
        *(f"{words} {m}" for _, words in _CLASSES for m in ("P", "R", "F1")),
    )
    return header, rows


def _best_of_lens(
    runs: list[dict[str, Any]], lens: Callable[[dict[str, Any]], str], cls: str, by: str
) -> dict[str, dict[str, Any]]:
    """Per lens, its run with the highest ``by`` on pair class ``cls`` (F1 breaks ties)."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("deterministic", "probabilistic", "hybrid"):
        of_lens = [r for r in runs if lens(r) == name and _segment(r, cls).get(by) is not None]
        if of_lens:
            out[name] = best_by(
                of_lens, lambda r: (_segment(r, cls)[by], _segment(r, cls).get("f1") or 0)
            )
    return out


def _ordered(
    best: dict[str, dict[str, Any]], cls: str, by: str
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """The lens ahead on ``by`` for class ``cls`` (None on a tie), its run and the other's.

    On a tie the deterministic run comes first.
    """
    d, p = best["deterministic"], best["probabilistic"]
    dv, pv = _segment(d, cls)[by], _segment(p, cls)[by]
    if round(dv, 3) == round(pv, 3):
        return None, d, p
    return ("deterministic", d, p) if dv > pv else ("probabilistic", p, d)


def _first_party_clause(best: dict[str, dict[str, Any]], label: Label) -> str:
    """Which lens leads on first-party pairs, by F1."""
    lead, hi, lo = _ordered(best, "first_party", "f1")
    a, b = (_segment(r, "first_party")["f1"] for r in (hi, lo))
    if lead is None:
        return f"both lenses reach F1 {a:.3f} on first-party pairs ({label(hi)}, {label(lo)})"
    return (
        f"the {lead} lens leads on first-party pairs (F1 {a:.3f} with {label(hi)} vs "
        f"{b:.3f} with {label(lo)})"
    )


def _anonymous_clause(best: dict[str, dict[str, Any]], label: Label) -> str:
    """Which lens adds recall on pairs of two anonymous identifiers, at what precision."""
    lead, hi, lo = _ordered(best, "anonymous", "recall")
    a, b = (_segment(r, "anonymous") for r in (hi, lo))
    where = "on pairs of two anonymous identifiers"
    if lead is None:
        return (
            f"{where} neither lens adds recall ({a['recall']:.3f} with {label(hi)} and {label(lo)})"
        )
    return (
        f"{where} the {lead} lens adds recall: {a['recall']:.3f} with {label(hi)} vs "
        f"{b['recall']:.3f} with {label(lo)} (precision {format_number(a.get('precision'))} vs "
        f"{format_number(b.get('precision'))})"
    )


def _per_lens(best: dict[str, dict[str, Any]], cls: str, by: str, label: Label) -> str:
    """``lens value with label`` for every lens of ``best`` (``-`` when none)."""
    parts = [f"{lens} {_segment(r, cls)[by]:.3f} with {label(r)}" for lens, r in best.items()]
    return "; ".join(parts) or "-"


def segment_sentence(
    records: list[dict[str, Any]],
    name: str,
    label: Label,
    lens: Callable[[dict[str, Any]], str],
) -> str | None:
    """The findings' pairs-by-class item of a dataset (None without segments).

    First-party pairs are compared by F1, pairs of two anonymous identifiers by recall
    (with the precision beside it), each lens by its best run on that class. A hybrid
    that may be recommended is named after the two lenses; when either of them has no
    such run, each lens's best is listed without a comparison.
    """
    if not any((r.get("segments") or {}).get("person") for r in records):
        return None
    runs = [r for r in contenders(records) if (r.get("segments") or {}).get("person")]
    first = _best_of_lens(runs, lens, "first_party", "f1")
    anon = _best_of_lens(runs, lens, "anonymous", "recall")
    title = f"**Pairs by class** ({link('table', segments_heading(name))})"
    lenses = ("deterministic", "probabilistic")
    if not all(k in first and k in anon for k in lenses):
        return (
            f"{title}, the best run of each lens that may be recommended: first-party F1 "
            f"{_per_lens(first, 'first_party', 'f1', label)}; anonymous-pair recall "
            f"{_per_lens(anon, 'anonymous', 'recall', label)}."
        )
    text = f"{title}: {_first_party_clause(first, label)}; {_anonymous_clause(anon, label)}."
    if "hybrid" in first and "hybrid" in anon:
        text += (
            f" The hybrid lens: first-party F1 {_segment(first['hybrid'], 'first_party')['f1']:.3f}"
            f" with {label(first['hybrid'])}, anonymous-pair recall "
            f"{_segment(anon['hybrid'], 'anonymous')['recall']:.3f} with {label(anon['hybrid'])}."
        )
    return text
