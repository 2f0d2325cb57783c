"""The report of one suite, built from its stored run records only.

:func:`build_report` reads ``results/<suite>/runs/*.json``, draws the figures of
:mod:`bench.report.plot` into ``results/<suite>/figures/`` and writes two documents beside
them with the same content:

- ``report.md``: Markdown, figures linked as ``figures/<name>.png``;
- ``report.html``: one self-contained file (figures embedded as base64 PNG, inline CSS,
  no external references) to attach to an issue or open offline.

Sections: datasets, results per dataset (with, where the suite has a supervised matcher,
every matcher scored on the same held-out persons), the error-explaining tables, failed
and skipped runs with their reasons, figures with captions generated from the data (figures without data are listed with the
runs that would produce them), and the environment the runs executed in.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.metrics import aggregate
from bench.report import plot
from bench.report import tables as report_tables

__all__ = ["build_report", "plot_one"]

log = logging.getLogger(__name__)

plot_one = plot.plot_one  # ``idbench plot FIGURE`` entry point, re-exported for the CLI

_STATUS_ORDER = {"ok": 0, "timeout": 1, "error": 2, "skipped": 3}

RESULT_COLUMNS = (
    "matcher",
    "lens",
    "status",
    "precision",
    "recall",
    "F1",
    "B-cubed F1",
    "clusters / entities",
    "largest cluster",
    "records/s",
    "match s",
    "peak RSS MiB",
)


# --- a tiny document model rendered to both Markdown and HTML ---------------------------


@dataclass(frozen=True)
class _Block:
    kind: str  # h1 h2 h3 p table pre ul figure
    text: str = ""
    rows: tuple[tuple[str, ...], ...] = ()
    header: tuple[str, ...] = ()
    align: tuple[str, ...] = ()  # "l" or "r" per column
    items: tuple[str, ...] = ()
    image: Path | None = None
    link: str = ""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks: list[_Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "pre":
            out.append("```text\n" + b.text + "\n```")
        elif b.kind == "ul":
            out.append("\n".join(f"- {item}" for item in b.items))
        elif b.kind == "table":
            lines = ["| " + " | ".join(map(_md_cell, b.header)) + " |"]
            lines.append("|" + "|".join("---:" if a == "r" else ":---" for a in b.align) + "|")
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif b.kind == "figure":
            out.append(f"![{b.text}]({b.link})")
        out.append("")
    return "\n".join(out)


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline_html(text: str) -> str:
    """Escape text, then render the two inline marks the report uses: `code`, **bold**."""
    esc = html.escape(text, quote=False)
    esc = _CODE.sub(r"<code>\1</code>", esc)
    return _BOLD.sub(r"<strong>\1</strong>", esc)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #eee; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; }
th { background: #f4f4f4; white-space: nowrap; }
td:first-child { white-space: nowrap; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f2f2f2; padding: 0 .2rem; border-radius: 3px; font-size: .9em; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; }
figure { margin: 1rem 0 .4rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.status-ok { color: #1a7f37; } .status-error { color: #cf222e; font-weight: 600; }
.status-timeout { color: #9a6700; font-weight: 600; } .status-skipped { color: #777; }
"""


def _to_html(blocks: list[_Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{_inline_html(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "pre":
            body.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "ul":
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "table":
            cls = [' class="r"' if a == "r" else "" for a in b.align]
            head = "".join(
                f"<th{c}>{_inline_html(h)}</th>" for c, h in zip(cls, b.header, strict=True)
            )
            rows = []
            for row in b.rows:
                cells = []
                for c, h, v in zip(cls, b.header, row, strict=True):
                    inner = _inline_html(v)
                    if h == "status":
                        inner = f'<span class="status-{html.escape(v)}">{inner}</span>'
                    cells.append(f"<td{c}>{inner}</td>")
                rows.append("<tr>" + "".join(cells) + "</tr>")
            body.append(
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            )
        elif b.kind == "figure" and b.image is not None:
            data = base64.b64encode(b.image.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(b.text)}" '
                f'src="data:image/png;base64,{data}"></figure>'
            )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# --- formatting -------------------------------------------------------------------------


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


def _short_fp(fp: str | None) -> str:
    if not fp:
        return "-"
    return fp.split(":", 1)[-1][:12]


def _first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "no reason recorded").strip().splitlines()[0] if text else "no reason recorded"
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


# --- sections ---------------------------------------------------------------------------


def _datasets(results: plot.Results) -> list[dict[str, Any]]:
    """One entry per dataset fingerprint, ordered by size then name."""
    seen: dict[str, dict[str, Any]] = {}
    runs: Counter[str] = Counter()
    for r in results.records:
        ds = r.get("dataset") or {}
        fp = str(ds.get("fingerprint") or ds.get("name"))
        seen.setdefault(fp, ds)
        runs[fp] += 1
    return sorted(
        ({**ds, "_fp": fp, "_runs": runs[fp]} for fp, ds in seen.items()),
        key=lambda d: (int(d.get("n_records") or 0), str(d.get("name"))),
    )


def _recipe_text(ds: dict[str, Any]) -> str:
    recipe = ds.get("recipe")
    if not isinstance(recipe, dict):
        return "-"
    parts = [str(recipe[k]) for k in ("name", "size") if recipe.get(k)]
    overrides = recipe.get("overrides")
    if isinstance(overrides, dict):
        overrides = [f"{k}={v}" for k, v in overrides.items()]
    if overrides:
        parts.append(", ".join(map(str, overrides)))
    if not parts:
        parts = [", ".join(f"{k}={v}" for k, v in recipe.items())]
    return " ".join(parts) if parts else "-"


def _dataset_section(results: plot.Results, datasets: list[dict[str, Any]]) -> list[_Block]:
    rows = []
    for ds in datasets:
        rows.append(
            (
                str(ds.get("name")),
                str(ds.get("kind") or "-"),
                _num(int(ds.get("n_records") or 0)),
                f"`{_short_fp(ds.get('fingerprint'))}`",
                _recipe_text(ds),
                str(ds.get("seed") if ds.get("seed") is not None else "-"),
                str(ds["_runs"]),
            )
        )
    return [
        _Block("h2", "Datasets"),
        _Block(
            "table",
            header=("dataset", "kind", "records", "fingerprint", "recipe", "seed", "runs"),
            align=("l", "l", "r", "l", "l", "r", "r"),
            rows=tuple(rows),
        ),
    ]


def _result_rows(results: plot.Results, records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per (matcher configuration, status); repeats shown as their median."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(results.label(r), str(r.get("status")))].append(r)

    def sort_key(item: tuple[tuple[str, str], list[dict[str, Any]]]) -> tuple:
        (label, status), rs = item
        b3 = _median([(r.get("person") or {}).get("bcubed_f1") for r in rs])
        return (_STATUS_ORDER.get(status, 9), -(b3 if b3 is not None else -1), label)

    rows = []
    for (label, status), rs in sorted(groups.items(), key=sort_key):

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            return _median([(r.get("person") or {}).get(key) for r in rs])

        person_ok = status == "ok"
        clusters, entities = med("n_clusters"), med("n_entities")
        rps = _median([(r.get("throughput") or {}).get("records_per_s") for r in rs])
        match_s = _median([plot.match_seconds(r) for r in rs])
        peak = _median([r.get("peak_rss_bytes") for r in rs])
        lab = label + (f" (x{len(rs)})" if len(rs) > 1 else "")
        rows.append(
            (
                lab,
                plot.KIND_SHORT[results.kind(rs[0])],
                status,
                _num(med("precision")) if person_ok else "-",
                _num(med("recall")) if person_ok else "-",
                _num(med("f1")) if person_ok else "-",
                _num(med("bcubed_f1")) if person_ok else "-",
                f"{clusters:,.0f} / {entities:,.0f}"
                if person_ok and clusters is not None and entities is not None
                else "-",
                f"{med('largest_cluster'):,.0f}"
                if person_ok and med("largest_cluster") is not None
                else "-",
                f"{rps:,.0f}" if rps else "-",
                f"{match_s:.3g}" if match_s is not None and person_ok else "-",
                f"{peak / 2**20:,.0f}" if peak else "-",
            )
        )
    return rows


def _results_section(results: plot.Results, datasets: list[dict[str, Any]]) -> list[_Block]:
    blocks = [
        _Block("h2", "Results"),
        _Block(
            "p",
            "Person-level metrics. Precision, recall and F1 count record pairs; B-cubed F1 "
            "averages per record. Lens: `det` deterministic (exact keys, rule cascades, "
            "login bridges), `prob` probabilistic (Splink, recordlinkage, device graphs), "
            "`hybrid` both. records/s and match s cover fit + match (not loading or "
            "evaluation); peak RSS is the run's whole process tree. Rows with `(xN)` are "
            "medians over N repeats.",
        ),
    ]
    for ds in datasets:
        recs = [r for r in results.records if plot.dataset_key(r) == ds["_fp"]]
        blocks.append(
            _Block("h3", f"{ds.get('name')} ({_num(int(ds.get('n_records') or 0))} records)")
        )
        blocks.append(
            _Block(
                "table",
                header=RESULT_COLUMNS,
                align=("l", "l", "l", *("r",) * (len(RESULT_COLUMNS) - 3)),
                rows=tuple(_result_rows(results, recs)),
            )
        )
        blocks.extend(_training_note(results, recs))
    return blocks


def _training_note(results: plot.Results, records: list[dict[str, Any]]) -> list[_Block]:
    """Say which rows were scored without their training sample (supervised matchers)."""
    trained: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("status") == "ok" and rec.get("training"):
            trained.setdefault(results.label(rec), []).append(rec["training"])
    if not trained:
        return []
    parts = []
    for label, blocks in sorted(trained.items()):
        persons, recs = (_median([b.get(key) for b in blocks]) for key in ("persons", "records"))
        parts.append(
            f"`{label}` learnt from the labels of {_num(_whole(persons))} persons "
            f"({_num(_whole(recs))} records)"
        )
    share = _num(100 * float(next(iter(trained.values()))[0].get("fraction") or 0), 0)
    blocks = [
        _Block(
            "p",
            "Supervised: "
            + "; ".join(parts)
            + f" (a {share}% sample of persons drawn with the run's seed). Those records are "
            "left out of the row's metrics (marked `(held-out)`), so it is scored on "
            "fewer persons than the rows beside it and is not ranked against them in the "
            "summary.",
        )
    ]
    rows = _heldout_rows(results, records)
    if rows:
        blocks += [
            _Block(
                "p",
                "The same persons for everyone: each matcher's output restricted to the "
                "held-out persons of its seed (the records a supervised run of that seed "
                "is scored on), person level.",
            ),
            _Block("table", header=HELDOUT_COLUMNS, align=("l", "l", *("r",) * 5), rows=rows),
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
            _Block(
                "p",
                "Not in that comparison yet (stored before the suite had a supervised "
                f"matcher): {', '.join(f'`{m}`' for m in missing)}; `idbench run --recompute` "
                "adds their held-out metrics from the stored outputs.",
            )
        )
    return blocks


HELDOUT_COLUMNS = ("matcher", "lens", "records", "precision", "recall", "F1", "B-cubed F1")


def _heldout_rows(
    results: plot.Results, records: list[dict[str, Any]]
) -> tuple[tuple[str, ...], ...]:
    """One row per matcher configuration with held-out metrics (medians over repeats)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        if rec.get("status") == "ok" and (rec.get("heldout") or {}).get("person"):
            groups[results.label(rec)].append(rec)

    def med(rs: list[dict[str, Any]], key: str) -> float | None:
        return _median([r["heldout"]["person"].get(key) for r in rs])

    ordered = sorted(groups.items(), key=lambda kv: (-(med(kv[1], "bcubed_f1") or -1), kv[0]))
    return tuple(
        (
            label + (f" (x{len(rs)})" if len(rs) > 1 else ""),
            plot.KIND_SHORT[results.kind(rs[0])],
            _num(_whole(med(rs, "n_records"))),
            *(_num(med(rs, k)) for k in ("precision", "recall", "f1", "bcubed_f1")),
        )
        for label, rs in ordered
    )


_DEPTH_TABLES = (
    (
        "Variance over repeats",
        report_tables.variance_table,
        "B-cubed F1 over repeated runs (different seeds): mean, standard deviation and a "
        "95% t interval. A matcher is only called better than another when the intervals "
        "do not overlap.",
    ),
    (
        "Where recall is lost",
        report_tables.stage_table,
        "For matchers that score pairs. Recall is always measured against all true pairs: "
        "pairs never generated by blocking are lost at candidates, pairs scored below the "
        "threshold at the threshold; transitive closure can then gain recall (and lose "
        "precision) at clustering.",
    ),
    (
        "False merges by hazard",
        partial(report_tables.hazard_table, kind="false_merge_pairs"),
        "Record pairs put in one cluster that belong to different persons, counted when "
        "either record carries the planted hazard tag; `(all)` counts every false merge.",
    ),
    (
        "Missed merges by hazard",
        partial(report_tables.hazard_table, kind="missed_merge_pairs"),
        "Record pairs of one person left in different clusters, counted when either "
        "record carries the hazard tag. Cookie churn (itp_cookie_reset, shared devices) "
        "dominates what every matcher misses.",
    ),
    (
        "Business impact",
        report_tables.business_table,
        "Customer-count inflation is resolved customers / true persons (1 is right; above 1 "
        "means split customers, below 1 merged ones). Top-k: of the true top customers by "
        "order value, how many the resolved profiles rank among their own top k.",
    ),
    (
        "Anonymous identifiers",
        report_tables.anonymous_table,
        "Cookies and mobile ad ids only, scored as the public cross-device challenges did: "
        "mean per-device F0.5 (ICDM 2015 Drawbridge) and pair F1 (CIKM Cup 2016).",
    ),
)


def _depth_section(results: plot.Results, datasets: list[dict[str, Any]]) -> list[_Block]:
    blocks: list[_Block] = []
    for ds in datasets:
        recs = [r for r in results.records if plot.dataset_key(r) == ds["_fp"]]
        sub: list[_Block] = []
        for title, build, caption in _DEPTH_TABLES:
            table = build(recs, results.label)
            if table is None:
                continue
            header, rows = table
            sub += [
                _Block("h3", f"{title}: {ds.get('name')}"),
                _Block("p", caption),
                _Block(
                    "table",
                    header=header,
                    align=("l", *("r",) * (len(header) - 1)),
                    rows=tuple(rows),
                ),
            ]
        blocks += sub
    return [_Block("h2", "Where the errors come from"), *blocks] if blocks else []


def _failures_section(results: plot.Results) -> list[_Block]:
    failed = [r for r in results.records if r.get("status") in ("error", "timeout")]
    skipped = [r for r in results.records if r.get("status") == "skipped"]
    blocks: list[_Block] = [_Block("h2", "Failed runs")]
    if not failed:
        blocks.append(_Block("p", "No run failed."))
    for r in failed:
        ds = (r.get("dataset") or {}).get("name")
        blocks.append(
            _Block(
                "p",
                f"**{results.label(r)}** on `{ds}`: **{r.get('status')}**, run "
                f"`{r.get('run_key')}` (log: `logs/{r.get('run_key')}.log`).",
            )
        )
        blocks.append(_Block("pre", (r.get("error") or "no reason recorded").strip()))
    if skipped:
        blocks.append(_Block("h3", "Skipped runs (matcher does not apply to the dataset)"))
        blocks.append(
            _Block(
                "ul",
                items=tuple(
                    f"**{results.label(r)}** on `{(r.get('dataset') or {}).get('name')}`: "
                    f"{_first_line(r.get('error'))}"
                    for r in skipped
                ),
            )
        )
    return blocks


def _figures_section(
    rendered: dict[str, plot.Rendered | plot.Skip], suite_dir: Path
) -> list[_Block]:
    blocks: list[_Block] = [_Block("h2", "Figures")]
    drawn = {k: v for k, v in rendered.items() if isinstance(v, plot.Rendered)}
    skipped = {k: v for k, v in rendered.items() if isinstance(v, plot.Skip)}
    if not drawn:
        blocks.append(_Block("p", "No figure could be drawn from these runs."))
    for name, fig in drawn.items():
        rel = fig.files["png"].relative_to(suite_dir).as_posix()
        side = fig.files["json"].relative_to(suite_dir).as_posix()
        svg = fig.files["svg"].relative_to(suite_dir).as_posix()
        blocks += [
            _Block("h3", fig.title),
            _Block("figure", fig.title, image=fig.files["png"], link=rel),
            _Block("p", fig.caption),
            _Block(
                "p",
                f"Figure `{name}`: {len(fig.run_ids)} run(s), listed in `{side}`; "
                f"vector version `{svg}`.",
            ),
        ]
    if skipped:
        blocks.append(_Block("h3", "Figures not drawn"))
        blocks.append(
            _Block(
                "ul",
                items=tuple(
                    f"**{s.title}** (`{name}`): {s.reason}. To get it: {s.hint}."
                    for name, s in skipped.items()
                ),
            )
        )
    return blocks


def _environment_section(results: plot.Results) -> list[_Block]:
    envs = [r.get("environment") or {} for r in results.records]
    if not any(envs):
        return [_Block("h2", "Environment"), _Block("p", "The run records carry no environment.")]
    latest = next(
        (r.get("environment") for r in reversed(results.records) if r.get("environment")), {}
    )

    def commit_of(env: dict[str, Any]) -> str:
        git = env.get("git") or {}
        if not git.get("commit"):
            return "unknown"
        return str(git["commit"])[:12] + (" (dirty)" if git.get("dirty") else "")

    commits = sorted({commit_of(e) for e in envs if e})
    pythons = sorted({str(e.get("python")) for e in envs if e})
    mem = latest.get("memory_total_bytes")
    rows = [
        ("python", ", ".join(f"{p} ({latest.get('implementation', '')})".strip() for p in pythons)),
        ("platform", str(latest.get("platform") or "-")),
        ("machine", str(latest.get("machine") or "-")),
        ("CPUs", f"{latest.get('cpu_count')} ({latest.get('cpus_usable', '?')} usable)"),
        ("memory", f"{mem / 2**30:.1f} GiB" if mem else "-"),
        ("idbench commit", ", ".join(commits)),
    ]
    blocks = [
        _Block("h2", "Environment"),
        _Block(
            "table",
            header=("", "value"),
            align=("l", "l"),
            rows=tuple((k, v) for k, v in rows),
        ),
    ]
    if len(commits) > 1 or len(pythons) > 1:
        blocks.append(
            _Block(
                "p",
                "**Note:** the runs were made with different commits or Python versions; "
                "timings may not be comparable.",
            )
        )
    packages: dict[str, set[str]] = defaultdict(set)
    for e in envs:
        for pkg, ver in (e.get("packages") or {}).items():
            packages[pkg].add(str(ver))
    if packages:
        blocks.append(
            _Block(
                "table",
                header=("package", "version"),
                align=("l", "l"),
                rows=tuple((p, ", ".join(sorted(v))) for p, v in sorted(packages.items())),
            )
        )
    return blocks


def _summary(results: plot.Results, datasets: list[dict[str, Any]]) -> list[_Block]:
    status = Counter(str(r.get("status")) for r in results.records)
    counts = ", ".join(
        f"{status[s]} {s}" for s in sorted(status, key=lambda s: _STATUS_ORDER.get(s, 9))
    )
    starts = sorted(str(r.get("started_at")) for r in results.records if r.get("started_at"))
    when = (
        f" between {starts[0][:16].replace('T', ' ')} and {starts[-1][:16].replace('T', ' ')} UTC"
        if starts
        else ""
    )
    matchers = sorted({results.label(r) for r in results.records})
    text = (
        f"{len(results.records)} stored run(s) ({counts}) of {len(matchers)} matcher "
        f"configuration(s) on {len(datasets)} dataset(s){when}. Built from "
        f"`{results.suite_dir.as_posix() if results.suite_dir else '-'}` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC; rebuild with `idbench run` "
        f"(stored runs are not re-run)."
    )
    ok = results.ok()
    # a supervised run is scored on its held-out persons only: not comparable here
    scored = [
        r
        for r in ok
        if (r.get("person") or {}).get("bcubed_f1") is not None and not r.get("training")
    ]
    lines = []
    if scored:
        best = max(scored, key=lambda r: r["person"]["bcubed_f1"])
        lines.append(
            f"Highest B-cubed F1: **{results.label(best)}** ({best['person']['bcubed_f1']:.3f} "
            f"on `{best['dataset']['name']}`)."
        )
    fast = [r for r in ok if plot.records_per_s(r)]
    if fast:
        f = max(fast, key=plot.records_per_s)
        lines.append(
            f"Fastest: **{results.label(f)}** ({plot.records_per_s(f):,.0f} records/s on "
            f"`{f['dataset']['name']}`)."
        )
    n_failed = status["error"] + status["timeout"]
    if n_failed:
        lines.append(f"{n_failed} run(s) failed: see Failed runs.")
    blocks = [_Block("p", text)]
    if lines:
        blocks.append(_Block("ul", items=tuple(lines)))
    return blocks


# --- entry point ------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_report(suite_dir: Path) -> Path:
    """Build ``report.md`` and ``report.html`` for the suite stored under ``suite_dir``.

    Parameters
    ----------
    suite_dir
        The suite's results directory (``results/<suite>``), holding ``runs/*.json``.

    Returns
    -------
    Path
        The self-contained ``report.html`` (``report.md`` is written beside it, figures
        under ``figures/``).
    """
    suite_dir = Path(suite_dir)
    results = plot.Results.load(suite_dir)
    title = f"idbench report: suite {results.suite}"
    blocks: list[_Block] = [_Block("h1", title)]
    if not results.records:
        blocks.append(
            _Block("p", f"No run records under `{suite_dir / 'runs'}`: run the suite first.")
        )
    else:
        datasets = _datasets(results)
        rendered = plot.render_all(results, suite_dir / "figures")
        blocks += _summary(results, datasets)
        blocks += _dataset_section(results, datasets)
        blocks += _results_section(results, datasets)
        blocks += _depth_section(results, datasets)
        blocks += _failures_section(results)
        blocks += _figures_section(rendered, suite_dir)
        blocks += _environment_section(results)
    suite_dir.mkdir(parents=True, exist_ok=True)
    # Mean, sd and 95% interval per (dataset, matcher, metric): the stored variance.
    summary = aggregate.aggregate(results.records, dataset_key="name") if results.records else []
    _write_atomic(
        suite_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True, default=str)
    )
    _write_atomic(suite_dir / "report.md", _to_markdown(blocks))
    out = suite_dir / "report.html"
    _write_atomic(out, _to_html(blocks, title))
    log.info("report written to %s", out)
    return out
