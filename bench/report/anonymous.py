"""The anonymous task in the report: the challenges' scores and the evidence ceilings.

:func:`anonymous_table` shows, per run, the metrics of :mod:`bench.metrics.anchors`
(Drawbridge per device, CIKM pairs, the per-identifier variant) over the whole horizon
and their mean over the observation windows of :mod:`bench.metrics.windows`.
:func:`ceiling_table` and :func:`ceiling_sentence` set the dataset's evidence ceilings
(:mod:`bench.metrics.ceilings`: the share of true anonymous pairs shared IPs link at all)
beside the highest anonymous pair recall of a run the report may recommend, so a reader
sees how much of what is missed the data puts out of reach and how much the method
leaves. Everything is read from the records; a record stored before a key existed shows
``-`` for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report.document import link
from bench.report.format import format_number
from bench.report.tables import Table, first_per_label
from bench.report.verdict import best_by, contenders

__all__ = [
    "CEILINGS_TITLE",
    "anonymous_table",
    "best_anonymous_recall",
    "ceiling_sentence",
    "ceiling_table",
    "ceilings_heading",
]

#: Title of the evidence-ceiling table (its heading is ``<title>: <dataset>``).
CEILINGS_TITLE = "Evidence ceilings"

#: The window length shown when no record says (the evaluation's default).
_DEFAULT_WINDOW_DAYS = 30


def ceilings_heading(name: str) -> str:
    """Heading of the evidence-ceiling table of dataset ``name``."""
    return f"{CEILINGS_TITLE}: {name}"


def _anonymous(rec: dict[str, Any]) -> dict[str, Any]:
    """The person-level anonymous metrics of a run (empty when it has none)."""
    return (rec.get("anonymous") or {}).get("person") or {}


def _window_days(records: list[dict[str, Any]]) -> int:
    for r in records:
        days = (r.get("anonymous_windows") or {}).get("window_days")
        if days:
            return int(days)
    return _DEFAULT_WINDOW_DAYS


def _devices_cell(a: dict[str, Any]) -> str:
    """``devices scored / devices``; ``-`` for a record stored before these existed."""
    scored, devices = a.get("devices_scored"), a.get("devices")
    if scored is None or devices is None:
        return "-"
    return f"{format_number(scored)} / {format_number(devices)}"


def anonymous_table(
    records: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]
) -> Table | None:
    """The public cross-device challenges' metrics over anonymous identifiers, per run.

    Devices scored are those whose person has a cookie (the Drawbridge population);
    devices with a predicted cookie are counted over all devices, so they may outnumber
    the scored ones. The per-identifier F0.5 of a record stored before its rename is read from its former
    key ``mean_f0_5`` (the same figure).
    """
    rows = []
    for name, r in first_per_label(records, label).items():
        a = _anonymous(r)
        if not a:
            continue
        window = (r.get("anonymous_windows") or {}).get("mean") or {}
        per_identifier = a.get("per_identifier_f0_5", a.get("mean_f0_5"))
        rows.append(
            (
                name,
                format_number(a.get("drawbridge_f0_5")),
                _devices_cell(a),
                format_number(a.get("devices_with_predicted_cookie")),
                *(format_number(a.get(k)) for k in ("pair_precision", "pair_recall", "pair_f1")),
                format_number(window.get("drawbridge_f0_5")),
                format_number(window.get("pair_f1")),
                format_number(per_identifier),
            )
        )
    if not rows:
        return None
    days = _window_days(records)
    header = (
        "matcher",
        "Drawbridge F0.5",
        "devices scored / all",
        "devices with a predicted cookie",
        "pair precision",
        "pair recall",
        "pair F1 (CIKM)",
        f"Drawbridge F0.5, {days}-day windows",
        f"pair F1, {days}-day windows",
        "per-identifier F0.5",
    )
    return header, rows


def _ceilings(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The dataset's evidence ceilings, from the first run that carries them."""
    for r in records:
        if r.get("status") == "ok" and r.get("ceilings"):
            return dict(r["ceilings"])
    return None


def best_anonymous_recall(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the highest anonymous pair recall among those the report may recommend.

    Baselines and over-merging runs are left out (:func:`~bench.report.verdict.
    contenders`), supervised runs count only when no other run has anonymous metrics;
    None when no such run has any.
    """
    runs = [r for r in contenders(records) if _anonymous(r).get("pair_recall") is not None]
    if not runs:
        return None
    return best_by(
        runs, lambda r: (_anonymous(r)["pair_recall"], _anonymous(r).get("pair_f1") or 0)
    )


def ceiling_table(
    records: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]
) -> Table | None:
    """The true anonymous pairs shared IPs link, beside the best run's (None without ceilings)."""
    c = _ceilings(records)
    if c is None:
        return None
    near = c.get("near_days") or _DEFAULT_WINDOW_DAYS
    rows = [
        ("shared IP (direct)", c.get("direct_pairs"), c.get("direct_share")),
        (f"shared IP within {near} days", c.get("direct_near_pairs"), c.get("direct_near_share")),
        ("chain of shared IPs (closure)", c.get("closure_pairs"), c.get("closure_share")),
    ]
    best = best_anonymous_recall(records)
    if best is not None:
        a = _anonymous(best)
        rows.append((f"{label(best)} (highest pair recall)", a.get("tp_pairs"), a["pair_recall"]))
    header = ("linked by", "true anonymous pairs", "share of true anonymous pairs")
    return header, [(what, format_number(n), format_number(share)) for what, n, share in rows]


def _gap_sentence(recall: float, closure: float, who: str) -> str:
    """How much of the pairs a run misses the data puts out of reach and the method leaves."""
    if recall > closure:
        return (
            f" The highest anonymous pair recall, {recall:.3f} with {who}, exceeds the closure "
            f"ceiling by {recall - closure:.3f}: it links pairs no chain of shared IPs links "
            "(through evidence other than IPs, such as logins or orders carrying a cookie)."
        )
    return (
        f" The highest anonymous pair recall is {recall:.3f} with {who}: of the "
        f"{1 - recall:.3f} it misses, {1 - closure:.3f} no chain of shared IPs links (the "
        f"data) and {closure - recall:.3f} is linked by one but not found (the method)."
    )


def ceiling_sentence(
    records: list[dict[str, Any]], name: str, label: Callable[[dict[str, Any]], str]
) -> str | None:
    """The findings' evidence-ceiling item of a dataset (None without ceilings)."""
    c = _ceilings(records)
    if c is None or not c.get("true_pairs"):
        return None
    shares = [c.get(k) for k in ("direct_share", "direct_near_share", "closure_share")]
    if any(s is None for s in shares):
        return None
    direct, near, closure = (float(s) for s in shares)
    text = (
        f"**Evidence ceiling** ({link('table', ceilings_heading(name))}): of the "
        f"{int(c['true_pairs']):,} true anonymous pairs, shared IPs link {direct:.3f} "
        f"directly, {near:.3f} within {c.get('near_days') or _DEFAULT_WINDOW_DAYS} days and "
        f"{closure:.3f} through chains of shared IPs (closure)."
    )
    best = best_anonymous_recall(records)
    if best is None:
        return text + " No run that may be recommended has anonymous metrics to set beside it."
    return text + _gap_sentence(float(_anonymous(best)["pair_recall"]), closure, label(best))
