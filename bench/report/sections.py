"""The report's sections other than the results tables, each a list of blocks.

In report order: the summary (:func:`summary_section`), the datasets, where the errors
come from (the tables of :mod:`bench.report.tables`), failed and skipped runs, the
figures (with the ones not drawn and what would draw them) and the environment the runs
executed in. The results tables are in :mod:`bench.report.results_section`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench.report import tables as report_tables
from bench.report.anonymous import CEILINGS_TITLE, anonymous_table, ceiling_table
from bench.report.document import Block, link
from bench.report.figures import Rendered, Skip
from bench.report.findings import missed_hazards_heading
from bench.report.format import format_number
from bench.report.records import Results, dataset_key
from bench.report.results_section import STATUS_ORDER
from bench.report.segments import SEGMENTS_TITLE, segment_table
from bench.report.verdict import is_baseline

__all__ = [
    "collect_datasets",
    "dataset_section",
    "depth_section",
    "environment_section",
    "failures_section",
    "figures_section",
    "summary_section",
]


def collect_datasets(results: Results) -> list[dict[str, Any]]:
    """One entry per dataset fingerprint, ordered by size then name.

    Each is the record's ``dataset`` entry plus ``_fp`` (:func:`dataset_key`) and
    ``_runs`` (how many stored runs used it).
    """
    seen: dict[str, dict[str, Any]] = {}
    runs: Counter[str] = Counter()
    for r in results.records:
        fp = dataset_key(r)
        seen.setdefault(fp, r.get("dataset") or {})
        runs[fp] += 1
    return sorted(
        ({**ds, "_fp": fp, "_runs": runs[fp]} for fp, ds in seen.items()),
        key=lambda d: (int(d.get("n_records") or 0), str(d.get("name"))),
    )


def summary_section(results: Results, datasets: list[dict[str, Any]]) -> list[Block]:
    """What was run and when, and how many runs failed (the findings follow it)."""
    status = Counter(str(r.get("status")) for r in results.records)
    counts = ", ".join(
        f"{status[s]} {s}" for s in sorted(status, key=lambda s: STATUS_ORDER.get(s, 9))
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
    n_failed = status["error"] + status["timeout"]
    if n_failed:
        text += f" **{n_failed} run(s) failed**: see {link('Failed runs', 'Failed runs')}."
    return [Block("p", text)]


def _short_fp(fp: str | None) -> str:
    if not fp:
        return "-"
    return fp.split(":", 1)[-1][:12]


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


def dataset_section(datasets: list[dict[str, Any]]) -> list[Block]:
    """One row per dataset: kind, records, fingerprint, recipe, seed and runs."""
    rows = [
        (
            str(ds.get("name")),
            str(ds.get("kind") or "-"),
            format_number(int(ds.get("n_records") or 0)),
            f"`{_short_fp(ds.get('fingerprint'))}`",
            _recipe_text(ds),
            str(ds.get("seed") if ds.get("seed") is not None else "-"),
            str(ds["_runs"]),
        )
        for ds in datasets
    ]
    return [
        Block("h2", "Datasets"),
        Block(
            "table",
            header=("dataset", "kind", "records", "fingerprint", "recipe", "seed", "runs"),
            align=("l", "l", "r", "l", "l", "r", "r"),
            rows=tuple(rows),
        ),
    ]


#: A table's caption: fixed text, or computed from the dataset's records and labels.
Caption = str | Callable[[list[dict[str, Any]], Callable[[dict[str, Any]], str]], str]

#: The tables of "Where the errors come from": title, builder, caption.
_DEPTH_TABLES: tuple[tuple[str, Callable[..., Any], Caption], ...] = (
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
        "threshold at the threshold. Clustering (transitive closure, plus any rule-based "
        "merges of a hybrid) then changes both: a positive recall change is recall gained; "
        "a positive precision change means the final clusters are more precise than the "
        "scored pairs above the threshold (their extra pairs are mostly true), a negative "
        "one that closure added false pairs.",
    ),
    (
        "False merges by hazard",
        partial(report_tables.hazard_table, kind="false_merge_pairs"),
        partial(report_tables.hazard_caption, kind="false_merge_pairs", skip=is_baseline),
    ),
    (
        "Missed merges by hazard",
        partial(report_tables.hazard_table, kind="missed_merge_pairs"),
        partial(report_tables.hazard_caption, kind="missed_merge_pairs", skip=is_baseline),
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
        anonymous_table,
        "Cookies and mobile ad ids only, scored as the public cross-device challenges did. "
        "Drawbridge F0.5 (ICDM 2015): per device (mobile ad id), the F0.5 of the cookies in "
        "its cluster against its person's cookies, averaged over the devices whose person "
        "has a cookie (`devices scored`; a device with no predicted cookie scores 0; devices "
        "with a predicted cookie are counted over all devices). Pair precision, recall "
        "and F1 (CIKM Cup 2016): over pairs of anonymous identifiers. The window columns "
        "average each over the full observation windows, identifiers and truth restricted to "
        "those active in the window. Per-identifier F0.5 (not a challenge metric): the mean "
        "over every anonymous identifier of the F0.5 of its partners.",
    ),
    (
        SEGMENTS_TITLE,
        segment_table,
        "Precision (P), recall (R) and F1 of the record pairs of each class: two "
        "first-party records (CRM, orders, loyalty, POS, logins), an anonymous identifier "
        "with a first-party record (the bridge logins and orders build), two anonymous "
        "identifiers (cookies, ad ids; the CIKM pairs). The classes partition all pairs.",
    ),
    (
        CEILINGS_TITLE,
        ceiling_table,
        "A property of the dataset, not of a run: how many of the true anonymous pairs (two "
        "anonymous identifiers of one person) the IP evidence links at all: seen on a common "
        "IP, on one within the window, or through a chain of shared IPs. The last row is "
        "the highest anonymous pair recall of a run that does not over-merge (no baseline). "
        "Logins and orders carrying a cookie link identifiers too, so a run may exceed them.",
    ),
)


def depth_section(results: Results, datasets: list[dict[str, Any]]) -> list[Block]:
    """Every error-explaining table that has data, per dataset (nothing when none has)."""
    blocks: list[Block] = []
    for ds in datasets:
        recs = [r for r in results.records if dataset_key(r) == ds["_fp"]]
        for title, build, caption in _DEPTH_TABLES:
            table = build(recs, results.label)
            if table is None:
                continue
            header, rows = table
            heading = (
                missed_hazards_heading(str(ds.get("name")))
                if title == "Missed merges by hazard"
                else f"{title}: {ds.get('name')}"
            )
            blocks += [
                Block("h3", heading),
                Block("p", caption if isinstance(caption, str) else caption(recs, results.label)),
                Block(
                    "table",
                    header=header,
                    align=("l", *("r",) * (len(header) - 1)),
                    rows=tuple(rows),
                ),
            ]
    return [Block("h2", "Where the errors come from"), *blocks] if blocks else []


def _titled_list(title: str, items: list[str]) -> list[Block]:
    """A third-level heading over a bulleted list."""
    return [Block("h3", title), Block("ul", items=tuple(items))]


def _first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "no reason recorded").strip().splitlines()[0] if text else "no reason recorded"
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def failures_section(results: Results) -> list[Block]:
    """Failed runs with their error and log, then skipped runs with their reason."""
    failed = [r for r in results.records if r.get("status") in ("error", "timeout")]
    skipped = [r for r in results.records if r.get("status") == "skipped"]
    blocks: list[Block] = [Block("h2", "Failed runs")]
    if not failed:
        blocks.append(Block("p", "No run failed."))
    for r in failed:
        ds = (r.get("dataset") or {}).get("name")
        blocks.append(
            Block(
                "p",
                f"**{results.label(r)}** on `{ds}`: **{r.get('status')}**, run "
                f"`{r.get('run_key')}` (log: `logs/{r.get('run_key')}.log`).",
            )
        )
        blocks.append(Block("pre", (r.get("error") or "no reason recorded").strip()))
    if skipped:
        blocks += _titled_list(
            "Skipped runs (matcher does not apply to the dataset)",
            [
                f"**{results.label(r)}** on `{(r.get('dataset') or {}).get('name')}`: "
                f"{_first_line(r.get('error'))}"
                for r in skipped
            ],
        )
    return blocks


def figures_section(rendered: dict[str, Rendered | Skip], suite_dir: Path) -> list[Block]:
    """Each drawn figure with its caption and files, then those not drawn and why."""
    blocks: list[Block] = [Block("h2", "Figures")]
    drawn = {k: v for k, v in rendered.items() if isinstance(v, Rendered)}
    skipped = {k: v for k, v in rendered.items() if isinstance(v, Skip)}
    if not drawn:
        blocks.append(Block("p", "No figure could be drawn from these runs."))
    for name, fig in drawn.items():
        rel = fig.files["png"].relative_to(suite_dir).as_posix()
        side = fig.files["json"].relative_to(suite_dir).as_posix()
        blocks += [
            Block("h3", fig.title),
            Block("figure", fig.title, image=fig.files["png"], link=rel),
            Block("p", fig.caption),
            Block(
                "p",
                f"Figure `{name}`: {len(fig.run_ids)} run(s), listed in `{side}`.",
            ),
        ]
    if skipped:
        blocks += _titled_list(
            "Figures not drawn",
            [
                f"**{s.title}** (`{name}`): {s.reason}. To get it: {s.hint}."
                for name, s in skipped.items()
            ],
        )
    return blocks


def _commit_of(env: dict[str, Any]) -> str:
    git = env.get("git") or {}
    if not git.get("commit"):
        return "unknown"
    return str(git["commit"])[:12] + (" (dirty)" if git.get("dirty") else "")


def environment_section(results: Results) -> list[Block]:
    """Python, platform, machine and idbench commit of the runs, and package versions."""
    envs = [r.get("environment") or {} for r in results.records]
    if not any(envs):
        return [Block("h2", "Environment"), Block("p", "The run records carry no environment.")]
    latest = next(
        (r.get("environment") for r in reversed(results.records) if r.get("environment")), {}
    )
    commits = sorted({_commit_of(e) for e in envs if e})
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
        Block("h2", "Environment"),
        Block("table", header=("", "value"), align=("l", "l"), rows=tuple(rows)),
    ]
    if len(commits) > 1 or len(pythons) > 1:
        blocks.append(
            Block(
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
            Block(
                "table",
                header=("package", "version"),
                align=("l", "l"),
                rows=tuple((p, ", ".join(sorted(v))) for p, v in sorted(packages.items())),
            )
        )
    return blocks
