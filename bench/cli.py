"""The ``idbench`` command line.

``idbench list | check NAME | run [SUITE] | generate NAME | describe DATASET |
scale --matchers ... | report [SUITE] | plot FIGURE [SUITE]``
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from bench import __version__

# Wide enough for the results table when output goes to a file or a CI log.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

STATUS_STYLE = {
    "ok": "green",
    "error": "red",
    "timeout": "yellow",
    "skipped": "dim",
    "broken": "red",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def short_label(matcher: dict[str, Any]) -> str:
    """Matcher name plus the parameters the suite set (the full repr is in the record)."""
    params = " ".join(f"{k}={v}" for k, v in (matcher.get("params") or {}).items())
    return f"{matcher['name']} {params}".strip()


# --- list / check -----------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    """Show every registered matcher with its status."""
    from bench.run.registry import discover

    table = Table(title="Registered matchers (entry-point group idbench.matchers)")
    for col in ("name", "status", "tags", "distribution", "target / error"):
        table.add_column(col)
    for entry in discover().values():
        tags = ", ".join(sorted(getattr(entry.cls, "tags", ()))) if entry.cls else ""
        table.add_row(
            entry.name,
            f"[{STATUS_STYLE[entry.status]}]{entry.status}[/]",
            tags,
            f"{entry.distribution} {entry.version}",
            entry.target if entry.error is None else entry.error,
        )
    console.print(table)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run the conformance suite on one matcher."""
    import json

    from bench.run.registry import load_matcher_class
    from bench.testing import check_matcher

    cls = load_matcher_class(args.name)
    params = json.loads(args.params) if args.params else {}
    matcher = cls(**params)
    table = Table(title=f"Conformance checks: {matcher!r}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    style = {"passed": "green", "failed": "red", "xfail": "yellow", "xpass": "red"}
    outcomes = check_matcher(matcher)
    for o in outcomes:
        table.add_row(o.check, f"[{style[o.status]}]{o.status}[/]", o.message)
    console.print(table)
    bad = [o for o in outcomes if o.status in ("failed", "xpass")]
    n_pass = sum(o.status == "passed" for o in outcomes)
    console.print(
        f"{n_pass} passed, {len(bad)} failed, {sum(o.status == 'xfail' for o in outcomes)} expected failures"
    )
    return 1 if bad else 0


# --- run --------------------------------------------------------------------------------


def _results_table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="Results")
    cols = (
        "dataset",
        "matcher",
        "status",
        "precision",
        "recall",
        "F1",
        "B3 F1",
        "clusters/entities",
        "largest",
        "records/s",
        "match s",
        "peak MiB",
    )
    for col in cols:
        table.add_column(
            col, justify="left" if col in ("dataset", "matcher", "status") else "right"
        )
    for rec in records:
        m = rec.get("person") or {}
        status = rec["status"]
        rps = (rec.get("throughput") or {}).get("records_per_s")
        t = rec.get("timings") or {}
        match_s = t.get("fit", 0) + t.get("match", 0) if "match" in t else None
        table.add_row(
            rec["dataset"]["name"],
            short_label(rec["matcher"]),
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
            _fmt(m.get("precision")),
            _fmt(m.get("recall")),
            _fmt(m.get("f1")),
            _fmt(m.get("bcubed_f1")),
            f"{m['n_clusters']}/{m['n_entities']}" if "n_clusters" in m else "-",
            _fmt(m.get("largest_cluster")),
            f"{rps:,.0f}" if rps else "-",
            _fmt(match_s, 2),
            f"{rec.get('peak_rss_bytes', 0) / 1024**2:,.0f}",
        )
    return table


def cmd_run(args: argparse.Namespace) -> int:
    """Run a suite of datasets x matchers; store one record per run; print the results."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.run.results import RunStore
    from bench.run.runner import FAILED_STATUSES, recompute, run_suite
    from bench.run.suite import default_suite_path, load_suite

    results_root = Path(args.results)
    suite = load_suite(args.suite or default_suite_path())
    if args.recompute:
        n, problems = recompute(results_root / suite.name)
        for p in problems:
            err.print(f"[yellow]not recomputed[/]: {escape(p)}")
        console.print(
            f"recomputed the metrics of {n} stored run(s) under {results_root / suite.name}"
        )
        return 1 if problems else 0

    def terminate(signum: int, frame: object) -> None:
        # SIGTERM / SIGHUP stop like Ctrl-C: the current run is killed, nothing half-stored
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )
    records: list[dict[str, Any]] = []
    task = None

    def gen_progress(desc: str, frac: float) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task("generating data", total=100)
        progress.update(task, completed=int(frac * 100), description=f"generating: {desc}")

    def on_plan(runs, done) -> None:
        nonlocal task
        task = progress.add_task(f"suite {suite.name}", total=len(runs))
        if done:
            progress.console.print(
                f"{len(done)} of {len(runs)} run(s) already stored: skipped (use --force to redo)"
            )
        if args.retry_failed:
            # with --retry-failed, the stored runs left to run are exactly the failed ones
            store = RunStore(results_root / suite.name)
            retry = sum(r.key not in done and store.exists(r.key) for r in runs)
            progress.console.print(
                f"retrying {retry} stored run(s) that failed"
                if retry
                else "no stored run failed: nothing to retry"
            )

    def on_start(run) -> None:
        progress.update(task, description=f"running {run.label()}")

    def on_done(run, rec, skipped) -> None:
        records.append(rec)
        progress.advance(task)
        live.update(_group())

    def _group():
        from rich.console import Group

        return Group(_results_table(records), progress)

    with Live(_group(), console=console, refresh_per_second=4) as live:
        try:
            all_records = run_suite(
                suite,
                results_root=results_root,
                force=args.force,
                retry_failed=args.retry_failed,
                on_plan=on_plan,
                on_start=on_start,
                on_done=on_done,
                progress=gen_progress,
            )
        except KeyboardInterrupt:
            live.stop()
            err.print(
                f"[yellow]interrupted[/]: {len(records)} run(s) stored under "
                f"{results_root / suite.name}; run the same command again to resume"
            )
            return 130
    failed = [r for r in all_records if r["status"] in FAILED_STATUSES]
    for r in failed:
        err.print(
            f"[red]{r['status']}[/] {escape(r['matcher']['label'])} on "
            f"{escape(r['dataset']['name'])}: {escape(str(r['error']))}"
        )
    console.print(f"records stored under {results_root / suite.name}")
    if not args.no_report:
        _maybe_report(suite.name, results_root)
    if not failed:
        return 0
    counts = ", ".join(
        f"{sum(r['status'] == s for r in failed)} {s}"
        for s in FAILED_STATUSES
        if any(r["status"] == s for r in failed)
    )
    retry = " ".join(
        [
            "idbench run",
            *([args.suite] if args.suite else []),
            *(["--results", args.results] if args.results != "results" else []),
            "--retry-failed",
        ]
    )
    err.print(
        f"[red]{len(failed)} of {len(all_records)} run(s) failed[/] ({counts}); after fixing "
        f"the cause (or raising timeout_s / memory_limit), re-run only those with: "
        f"{escape(retry)}"
    )
    # Failed runs are recorded results, so by default the command still succeeds (a broken
    # third-party plugin must not stop `make run`); --strict makes them fail CI.
    return 1 if args.strict else 0


def _maybe_report(suite_name: str, results_root: Path) -> None:
    try:
        from bench.report import build as report
    except ImportError:
        return
    path = report.build_report(results_root / suite_name)
    console.print(f"report written to {path}")


# --- generate / describe ----------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate a dataset from a preset or recipe file."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.data.datagen import generate
    from bench.data.recipes import load_recipe

    recipe = load_recipe(args.name, size=args.size, overrides=args.set or None)
    out = (
        Path(args.out)
        if args.out
        else Path("datasets/generated") / f"{recipe.folder_name}-s{args.seed}"
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("generating", total=1.0)

        def report(phase: str, frac: float) -> None:
            progress.update(task, completed=frac, description=f"generating: {phase}")

        path = generate(recipe, seed=args.seed, out=out, progress=report)
    console.print(f"dataset written to {path}")
    return cmd_describe(argparse.Namespace(dataset=str(path), json=False))


def cmd_describe(args: argparse.Namespace) -> int:
    """Print counts per source, per hazard, records and identifiers per person."""
    import json

    from bench.data.datagen import describe
    from bench.data.dataset import Dataset

    ds = Dataset.open(args.dataset)
    info = describe(ds.root)
    if args.json:
        console.print_json(json.dumps(info, default=str))
        return 0
    console.print(f"[bold]{ds.name}[/]  {ds.fingerprint[:19]}  {ds.n_records:,} records")
    for key, value in info.items():
        if (
            isinstance(value, dict)
            and value
            and all(not isinstance(v, dict | list) for v in value.values())
        ):
            table = Table(title=key.replace("_", " "))
            table.add_column("key")
            table.add_column("value", justify="right")
            for k, v in value.items():
                table.add_row(str(k), f"{v:,}" if isinstance(v, int) else _fmt(v))
            console.print(table)
        elif isinstance(value, dict):
            table = Table(title=key.replace("_", " "))
            cols = sorted({c for v in value.values() if isinstance(v, dict) for c in v})
            table.add_column("")
            for c in cols:
                table.add_column(str(c), justify="right")
            for k, v in value.items():
                row = v if isinstance(v, dict) else {}
                table.add_row(str(k), *(_fmt(row.get(c)) for c in cols))
            console.print(table)
        else:
            console.print(f"{key}: {value}")
    return 0


def _cmd_scale(args: argparse.Namespace) -> int:
    from bench.run.scale import cmd_scale

    return cmd_scale(args)


# --- report / plot ----------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    """Build report.md and report.html of a suite from its stored results."""
    from bench.report.build import build_report

    suite_dir = Path(args.results) / args.suite
    if not (suite_dir / "runs").is_dir():
        err.print(f"[red]error:[/] no stored runs under {suite_dir}/runs (run `idbench run` first)")
        return 2
    path = build_report(suite_dir)
    console.print(f"report written to {path} and {path.with_suffix('.md')}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw one figure of a suite from its stored results."""
    from bench.report.plot import PlotError, plot_one

    try:
        paths = plot_one(
            Path(args.results) / args.suite, args.figure, Path(args.out) if args.out else None
        )
    except PlotError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    for p in paths:
        console.print(str(p))
    return 0


# --- main -------------------------------------------------------------------------------


class _Help(argparse.HelpFormatter):
    """Help text with each option's default, where it has a meaningful one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            return f"{text} (default: %(default)s)"
        return text


def _command(
    sub: Any, name: str, help_text: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose help page describes it and shows its meaningful defaults."""
    return sub.add_parser(
        name, help=help_text, description=description or help_text, formatter_class=_Help
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="idbench",
        description="Identity resolution benchmark: deterministic (CDP) vs probabilistic "
        "(DMP) matchers on one synthetic population or your own labelled data.",
    )
    parser.add_argument("--version", action="version", version=f"idbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log diagnostics")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(
        sub,
        "list",
        "list registered matchers and their status",
        "List every matcher registered under the idbench.matchers entry points, with its "
        "tags, distribution and whether it loads.",
    )
    p.set_defaults(func=cmd_list)

    p = _command(
        sub,
        "check",
        "run the conformance suite on a matcher",
        "Run the conformance checks (bench.testing) on one matcher and print a table; "
        "exit 1 when a check fails.",
    )
    p.add_argument("name", help="registered matcher name or module:Class")
    p.add_argument("--params", help='constructor parameters as JSON, e.g. \'{"keys": ["phone"]}\'')
    p.set_defaults(func=cmd_check)

    p = _command(
        sub,
        "run",
        "run a suite (default: the bundled default suite)",
        "Run every dataset x matcher x parameter set x repeat of a suite, one process per "
        "run, and store a record per run; stored runs are skipped. SUITE is a TOML file or "
        "a bundled suite: default, guards, noise-sweep.",
    )
    p.add_argument("suite", nargs="?", help="suite TOML file or bundled suite name")
    p.add_argument("--results", default="results", help="results root")
    redo = p.add_mutually_exclusive_group()
    redo.add_argument("--force", action="store_true", help="re-run runs that are already stored")
    redo.add_argument(
        "--retry-failed",
        action="store_true",
        help="also re-run the stored runs that failed (status error or timeout); stored ok "
        "and skipped runs are kept, runs not stored yet run as usual",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any run of the suite failed (error or timeout); "
        "by default failed runs are recorded and the command exits 0",
    )
    p.add_argument(
        "--recompute",
        action="store_true",
        help="re-derive the metrics of the suite's stored runs from their raw outputs (runs "
        "nothing; --force / --retry-failed / --strict do not apply; exits 1 when a run "
        "cannot be recomputed)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report afterwards")
    p.set_defaults(func=cmd_run)

    p = _command(
        sub,
        "generate",
        "generate a synthetic dataset from a recipe",
        "Render a synthetic population from a preset or recipe file into the dataset "
        "layout (records, auxiliary tables, truth).",
    )
    p.add_argument(
        "name",
        help="preset (cdp-clean, cdp-realistic, dmp-crossdevice, "
        "identity-graph, adversarial) or recipe TOML file",
    )
    p.add_argument(
        "--size", default="tiny", choices=["tiny", "small", "large", "xl"], help="population size"
    )
    p.add_argument("--seed", type=int, default=42, help="generator seed (part of the folder name)")
    p.add_argument(
        "--out",
        help="output directory (default: datasets/generated/NAME-SIZE-sSEED for a preset; "
        "a recipe file of your own or --set adds a hash of the parameters after SIZE)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a knob, e.g. --set emails.churn_per_year=0.5 (repeatable)",
    )
    p.set_defaults(func=cmd_generate)

    p = _command(sub, "describe", "counts per source, hazard and person of a dataset")
    p.add_argument("dataset", help="dataset directory")
    p.add_argument("--json", action="store_true", help="print the raw description as JSON")
    p.set_defaults(func=cmd_describe)

    p = _command(
        sub,
        "scale",
        "scaling sweep: matchers over growing datasets, fitted cost exponent",
        "Run matchers over a generated recipe at growing record counts and fit time = a * n^b.",
    )
    p.add_argument("--matchers", required=True, help="comma-separated, e.g. cascade,splink")
    p.add_argument("--sizes", default="10k,100k,1M", help="record counts")
    p.add_argument("--recipe", default="cdp-realistic", help="generated preset")
    p.add_argument("--seed", type=int, default=1, help="generator and run seed")
    p.add_argument("--results", default="results", help="results root")
    p.add_argument("--suite", default="scaling", help="suite name for the stored runs")
    p.add_argument("--timeout", type=float, default=1800.0, help="per-run timeout in seconds")
    p.add_argument(
        "--memory-limit", dest="memory_limit", default="16GB", help="per-run memory limit"
    )
    p.add_argument("--force", action="store_true", help="re-run stored runs")
    p.add_argument("--json", help="also write the sweep and fits to this JSON file")
    p.set_defaults(func=_cmd_scale)

    p = _command(sub, "report", "build report.md / report.html from stored results")
    p.add_argument("suite", nargs="?", default="default", help="suite name")
    p.add_argument("--results", default="results", help="results root")
    p.set_defaults(func=cmd_report)

    p = _command(sub, "plot", "draw one figure from stored results")
    p.add_argument(
        "figure",
        help="pareto, precision_recall, degradation, hazards, monthly or scaling",
    )
    p.add_argument("suite", nargs="?", default="default", help="suite name")
    p.add_argument("--results", default="results", help="results root")
    p.add_argument(
        "--out", help="output directory or .png/.svg path (default: the suite's figures/)"
    )
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from bench.data.dataset import DatasetError
    from bench.data.recipes import RecipeError
    from bench.run.registry import RegistryError
    from bench.run.suite import SuiteError

    try:
        return args.func(args)
    except (SuiteError, DatasetError, RegistryError, RecipeError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return 2
    except (ValueError, TypeError) as exc:
        if args.verbose:
            raise
        err.print(
            f"[red]error:[/] {escape(str(exc))} (run `idbench -v {args.command} ...` for the "
            "traceback)"
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
