"""The ``idbench`` command line.

``idbench list | check NAME | run [SUITE] | generate NAME | describe DATASET |
scale --matchers ... | report [SUITE] | plot FIGURE [SUITE]``

:func:`main` parses and dispatches; the ``run`` command with its live display lives in
:mod:`bench.cli.run`, the consoles every command writes to in :mod:`bench.cli.console`.
Commands import the harness when they run, so ``idbench --help`` stays quick.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from bench import __version__
from bench.cli.console import STATUS_STYLE, console, err
from bench.report.format import format_number

# --- list / check -----------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    """Show every registered matcher with its status."""
    from bench.run.registry import discover

    table = Table(title="Registered matchers (entry-point group idbench.matchers)")
    for col in ("name", "status", "lens", "tags", "distribution", "target / error"):
        table.add_column(col)
    for entry in discover().values():
        tags = ", ".join(sorted(getattr(entry.cls, "tags", ()))) if entry.cls else ""
        table.add_row(
            entry.name,
            f"[{STATUS_STYLE[entry.status]}]{entry.status}[/]",
            getattr(entry.cls, "lens", "") or "unspecified",
            tags,
            f"{entry.distribution} {entry.version}",
            entry.target if entry.error is None else entry.error,
        )
    console.print(table)
    return 0


def _check_params(text: str | None) -> dict[str, Any] | None:
    """The ``--params`` of ``idbench check`` as a dict; None (after saying why) when invalid."""
    import json

    example = """--params '{"keys": ["phone"]}'"""
    if not text:
        return {}
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        err.print(
            f"[red]error:[/] --params must be a JSON object of constructor parameters, e.g. "
            f"{escape(example)} (names and strings in double quotes); {escape(repr(text))} is not "
            f"JSON: {escape(exc.msg)} at character {exc.pos + 1}",
            soft_wrap=True,
        )
        return None
    if not isinstance(params, dict):
        err.print(
            f"[red]error:[/] --params must be a JSON object ({{...}}), e.g. {escape(example)}; "
            f"got {type(params).__name__}",
            soft_wrap=True,
        )
        return None
    return params


def cmd_check(args: argparse.Namespace) -> int:
    """Run the conformance suite on one matcher."""
    from bench.run.registry import load_matcher_class
    from bench.testing import check_matcher

    cls = load_matcher_class(args.name)
    params = _check_params(args.params)
    if params is None:
        return 2
    matcher = cls(**params)
    from bench.run.labels import matcher_label

    table = Table(title=f"Conformance checks: {matcher_label(args.name, params)}")
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
    """Print counts per source, per hazard, records and identifiers per person, realism."""
    import json

    from bench.data.datagen import describe
    from bench.data.dataset import Dataset

    ds = Dataset.open(args.dataset)
    info = describe(ds.root)
    if args.json:
        console.print_json(json.dumps(info, default=str))
        return 0
    console.print(f"[bold]{ds.name}[/]  {ds.fingerprint[:19]}  {ds.n_records:,} records")
    # The realism table is a dict of tables: print each as its own table.
    realism = info.pop("realism", None) or {}
    items = [*info.items(), *((f"realism: {k}", v) for k, v in realism.items())]
    for key, value in items:
        if (
            isinstance(value, dict)
            and value
            and all(not isinstance(v, dict | list) for v in value.values())
        ):
            table = Table(title=key.replace("_", " "))
            table.add_column("key")
            table.add_column("value", justify="right")
            for k, v in value.items():
                table.add_row(str(k), format_number(v))
            console.print(table)
        elif isinstance(value, dict):
            table = Table(title=key.replace("_", " "))
            cols = sorted({c for v in value.values() if isinstance(v, dict) for c in v})
            table.add_column("")
            for c in cols:
                table.add_column(str(c), justify="right")
            for k, v in value.items():
                row = v if isinstance(v, dict) else {}
                table.add_row(str(k), *(format_number(row.get(c)) for c in cols))
            console.print(table)
        else:
            console.print(f"{key}: {value}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """``idbench run`` (:mod:`bench.cli.run`, imported when used: it loads the harness)."""
    from bench.cli.run import cmd_run

    return cmd_run(args)


def _cmd_scale(args: argparse.Namespace) -> int:
    from bench.cli.run import engine_from_args
    from bench.data.recipes import RecipeError, parse_overrides
    from bench.run.scale import cmd_scale
    from bench.run.suite import EngineSpec

    args.overrides = parse_overrides(args.set or [])
    args.engine_spec = engine_from_args(EngineSpec(), args)
    if "world.persons" in args.overrides:
        msg = "scale: --set world.persons is not allowed: --sizes sets it at each size"
        raise RecipeError(msg)

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
    from bench.report.figures import PlotError, plot_one

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


def _add_matcher_commands(sub: Any) -> None:
    """``list`` and ``check``: the registered matchers and their conformance."""
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


def _add_run_command(sub: Any) -> None:
    """``run``: a suite, with what to redo and how strictly to exit."""
    p = _command(
        sub,
        "run",
        "run a suite (default: the bundled default suite)",
        "Run every dataset x matcher x parameter set x repeat of a suite, one process per "
        "run, and store a record per run; stored runs are skipped. SUITE is a TOML file or "
        "a bundled suite: default, guards, noise-sweep, engines.",
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
    _add_engine_options(p)
    p.set_defaults(func=_cmd_run)


def _add_data_commands(sub: Any) -> None:
    """``generate`` and ``describe``: synthetic datasets."""
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


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine`` / ``--master``: where the matchers run (overrides the suite's [engine])."""
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        help="engine the matchers run on (default: the suite's [engine], else duckdb); "
        "spark needs the [spark] extra and Java",
    )
    p.add_argument(
        "--master",
        help="Spark master for --engine spark: local[N] (default local[2]), spark://host:port "
        "or a Spark Connect sc://host:port",
    )


def _add_scale_command(sub: Any) -> None:
    """``scale``: a scaling sweep built in code."""
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
    _add_engine_options(p)
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a knob at every size, e.g. --set noise.typo_scale=2 (repeatable; "
        "world.persons is set by --sizes)",
    )
    p.set_defaults(func=_cmd_scale)


def _add_report_commands(sub: Any) -> None:
    """``report`` and ``plot``: documents and figures from stored results."""
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
    _add_matcher_commands(sub)
    _add_run_command(sub)
    _add_data_commands(sub)
    _add_scale_command(sub)
    _add_report_commands(sub)
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
