"""The report's first section: what the numbers show, per population, in sentences.

For each dataset (a population of persons and the records they left) the findings say
what the deterministic and the probabilistic lens (and a hybrid, where one ran) reach,
how precise they are, where each fails and what it costs, which lens leads on which
class of pairs (:mod:`bench.report.segments`) and how far the evidence could reach on
anonymous identifiers (:mod:`bench.report.anonymous`), each sentence computed from the
stored records and linked to the table it comes from. The best run of a lens is
chosen by :func:`bench.report.verdict.rank_key` among runs that do not over-merge;
over-merging runs are named with the rule they break (:data:`~bench.report.verdict.
OVERMERGE_RULE`), baselines are named as baselines, and matchers that could not apply
are listed with their reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.report.anonymous import ceiling_sentence
from bench.report.document import Block, link
from bench.report.records import Results, dataset_key, person, records_per_s
from bench.report.results_section import results_heading
from bench.report.segments import segment_sentence
from bench.report.verdict import (
    OVERMERGE_RULE,
    best_by,
    contenders,
    overmerge_reason,
    rank_key,
)

__all__ = ["dataset_findings", "findings_section", "missed_hazards_heading", "top_missed_hazard"]

#: Lenses the findings compare, in order (baselines are named apart).
_LENSES = ("deterministic", "probabilistic", "hybrid", "unspecified")


def missed_hazards_heading(name: str) -> str:
    """Heading of the missed-merges-by-hazard table of dataset ``name``."""
    return f"Missed merges by hazard: {name}"


def top_missed_hazard(rec: dict[str, Any]) -> tuple[str, float] | None:
    """The planted hazard behind most of a run's missed merges (person level), if any."""
    rows = [
        h
        for h in rec.get("hazards") or person(rec).get("hazards") or []
        if h.get("level", "person") == "person" and h.get("hazard") != "(all)"
    ]
    rows = [h for h in rows if (h.get("missed_merge_pairs") or 0) > 0]
    if not rows:
        return None
    top = max(rows, key=lambda h: (h["missed_merge_pairs"], str(h.get("hazard"))))
    return str(top["hazard"]), float(top["missed_merge_pairs"])


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best of ``runs`` by :func:`rank_key` (:func:`best_by`)."""
    return best_by(runs, rank_key)


def _first_line(text: str | None) -> str:
    """A skip reason's first line, without the runner's prefix and the final full stop."""
    line = ((text or "no reason recorded").strip().splitlines() or [""])[0]
    line = line.removeprefix("matcher does not apply to this dataset: ")
    return line.rstrip(".")


def _share(x: float) -> str:
    return f"{100 * x:.1f}%" if 0 < x < 0.01 else f"{100 * x:.0f}%"


def _best_sentence(results: Results, lens: str, best: dict[str, Any], ds: dict[str, Any]) -> str:
    """What the best run of a lens reaches, how precisely, where it fails, at what cost."""
    m = person(best)
    name = str(ds.get("name"))
    parts = [
        f"**{lens.capitalize()}**: best is **{results.label(best)}** (pairwise F1 "
        f"{m.get('f1') or 0:.3f}): it finds {_share(m.get('recall') or 0)} of the true "
        f"same-person pairs at precision {m.get('precision') or 0:.3f}"
    ]
    if m.get("largest_cluster") is not None and m.get("largest_entity") is not None:
        parts.append(
            f"; its largest cluster holds {int(m['largest_cluster']):,} records (largest true "
            f"person: {int(m['largest_entity']):,})"
        )
    inflation = ((best.get("business") or {}).get("person") or {}).get("entity_count_inflation")
    if inflation is not None:
        parts.append(f"; customer count {inflation:.2f}x the true count")
    parts.append(f" ({link('results', results_heading(ds))}).")
    hazard = top_missed_hazard(best)
    if hazard is not None:
        parts.append(
            f" It misses most where records carry `{hazard[0]}` ({hazard[1]:,.0f} missed "
            f"pairs, {link('missed merges', missed_hazards_heading(name))})"
        )
    rps = records_per_s(best)
    if rps:
        parts.append(f"{' and' if hazard else ' It'} runs at {rps:,.0f} records/s")
    if best.get("training"):
        parts.append(" (scored on the persons it did not learn from)")
    return "".join(parts) + ("." if hazard or rps or best.get("training") else "")


def _lens_sentence(
    results: Results, lens: str, runs: list[dict[str, Any]], ds: dict[str, Any]
) -> str:
    """One finding for a lens on a dataset: its best run, or why it has none."""
    ok = [r for r in runs if r.get("status") == "ok"]
    title = f"**{lens.capitalize()}**"
    if not ok:
        skipped = [r for r in runs if r.get("status") == "skipped"]
        if skipped and len(skipped) == len(runs):
            return f"{title}: does not apply here (see Not applicable below)."
        return f"{title}: every run failed ({link('failed runs', 'Failed runs')})."
    fair = contenders(ok)
    if not fair:
        return (
            f"{title}: every run over-merges ({', '.join(sorted({results.label(r) for r in ok}))}"
            "): none is recommended."
        )
    best = _best(fair)
    if not person(best).get("recall"):
        names = ", ".join(sorted({results.label(r) for r in fair}))
        return (
            f"{title}: no run links a single true same-person pair ({names}: recall 0; "
            f"{link('results', results_heading(ds))})."
        )
    return _best_sentence(results, lens, best, ds)


def _compare(a: float, b: float, more: str, less: str, same: str) -> str:
    if round(a, 3) == round(b, 3):
        return same
    return more if a > b else less


def _why_absent(results: Results, lens: str, runs: list[dict[str, Any]]) -> str:
    """Why a lens has no run that links true pairs without over-merging."""
    of_lens = [r for r in runs if results.lens(r) == lens]
    ok = [r for r in of_lens if r.get("status") == "ok"]
    if not of_lens:
        return "did not run"
    if not ok:
        skipped = all(r.get("status") == "skipped" for r in of_lens)
        return "does not apply (skipped)" if skipped else "failed"
    if not contenders(ok):
        return "over-merges"
    return "links no true pair"


def _lead(
    results: Results,
    ds: dict[str, Any],
    best: dict[str, dict[str, Any]],
    runs: list[dict[str, Any]],
) -> str:
    """The population's headline: which lens reaches further, and at what precision."""
    name = f"{ds.get('name')} ({int(ds.get('n_records') or 0):,} records)"
    linking = {lens: r for lens, r in best.items() if person(r).get("recall")}
    if not linking:
        return f"On {name} no matcher that does not over-merge links a true same-person pair."
    missing = [lens for lens in ("deterministic", "probabilistic") if lens not in linking]
    if missing:
        r = max(linking.values(), key=rank_key)
        why = "; ".join(f"the {lens} lens {_why_absent(results, lens, runs)}" for lens in missing)
        return (
            f"On {name} {why}. The best run is {results.label(r)} ({results.lens(r)}: recall "
            f"{person(r)['recall']:.3f}, precision {person(r).get('precision') or 0:.3f})."
        )
    d, p = person(linking["deterministic"]), person(linking["probabilistic"])
    reach = _compare(
        p["recall"],
        d["recall"],
        "more true pairs than",
        "fewer true pairs than",
        "as many true pairs as",
    )
    prec = _compare(p.get("precision") or 0, d.get("precision") or 0, "higher", "lower", "the same")
    return (
        f"On {name} the probabilistic lens finds {reach} the deterministic "
        f"(recall {p['recall']:.3f} with {results.label(linking['probabilistic'])} vs "
        f"{d['recall']:.3f} with {results.label(linking['deterministic'])}) at {prec} "
        f"precision ({p.get('precision') or 0:.3f} vs {d.get('precision') or 0:.3f})."
    )


def _baseline_sentence(results: Results, runs: list[dict[str, Any]]) -> str | None:
    ok = [r for r in runs if r.get("status") == "ok" and results.lens(r) == "baseline"]
    if not ok:
        return None
    parts = [f"{results.label(r)} (B-cubed F1 {person(r).get('bcubed_f1') or 0:.3f})" for r in ok]
    floor = max(person(r).get("bcubed_f1") or 0 for r in ok)
    below = sorted(
        {
            results.label(r)
            for r in runs
            if r.get("status") == "ok"
            and results.lens(r) != "baseline"
            and (person(r).get("bcubed_f1") or 0) < floor
        }
    )
    text = f"**Baseline** (resolves nothing on purpose, never recommended): {', '.join(parts)}."
    if below:
        text += f" Below it on B-cubed F1: {', '.join(below)}."
    return text


def _overmerge_sentence(results: Results, runs: list[dict[str, Any]]) -> str | None:
    ok = [r for r in runs if r.get("status") == "ok"]
    bad = [r for r in ok if overmerge_reason(r)]
    if not bad:
        return None
    fair_b3 = max((person(r).get("bcubed_f1") or 0 for r in contenders(ok)), default=None)

    def hides(r: dict[str, Any]) -> str:
        b3 = person(r).get("bcubed_f1") or 0
        if fair_b3 is None or b3 <= fair_b3:
            return ""
        return f"; its B-cubed F1 {b3:.3f} is above every run that does not over-merge"

    parts = [
        f"**{results.label(r)}** ({overmerge_reason(r)}{hides(r)})"
        for r in sorted(bad, key=results.label)
    ]
    return "**Over-merges, not recommended**: " + "; ".join(parts) + "."


def _skipped_sentence(results: Results, runs: list[dict[str, Any]]) -> str | None:
    skipped = [r for r in runs if r.get("status") == "skipped"]
    if not skipped:
        return None
    parts = {
        results.label(r): _first_line(r.get("error")).removeprefix(
            f"{(r.get('matcher') or {}).get('name')}: "
        )
        for r in skipped
    }
    return "**Not applicable**: " + "; ".join(f"{k}: {v}" for k, v in sorted(parts.items())) + "."


def dataset_findings(results: Results, ds: dict[str, Any]) -> Block:
    """The findings of one dataset: a lead sentence and one item per lens and caveat."""
    runs = [r for r in results.records if dataset_key(r) == ds["_fp"]]
    items: list[str] = []
    best: dict[str, dict[str, Any]] = {}
    for lens in _LENSES:
        of_lens = [r for r in runs if results.lens(r) == lens]
        if not of_lens:
            continue
        items.append(_lens_sentence(results, lens, of_lens, ds))
        fair = contenders([r for r in of_lens if r.get("status") == "ok"])
        if fair:
            best[lens] = _best(fair)
    name = str(ds.get("name"))
    for extra in (
        segment_sentence(runs, name, results.label, results.lens),
        ceiling_sentence(runs, name, results.label),
        _overmerge_sentence(results, runs),
        _baseline_sentence(results, runs),
        _skipped_sentence(results, runs),
    ):
        if extra:
            items.append(extra)
    return Block("findings", _lead(results, ds, best, runs), items=tuple(items))


def findings_section(results: Results, datasets: Sequence[dict[str, Any]]) -> list[Block]:
    """The "Findings" heading, how runs are ranked, and one block per dataset."""
    blocks = [Block("h2", "Findings")]
    for ds in datasets:
        blocks += [Block("h3", f"Findings: {ds.get('name')}"), dataset_findings(results, ds)]
    blocks.append(
        Block(
            "p",
            "How these are chosen: recall is the share of true same-person pairs found, "
            "precision the share of asserted pairs that are true. The best run of a lens is "
            "the highest pairwise F1 among runs that do not over-merge "
            f"({OVERMERGE_RULE}); B-cubed F1 alone rewards giant clusters, so it never "
            "ranks. Supervised runs are scored on held-out persons and are named best only "
            "when their lens has no other run.",
        )
    )
    return blocks
