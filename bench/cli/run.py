"""``idbench run``: run a suite under a live results table, then say what failed.

Runs are stored as they finish, so an interrupted suite (Ctrl-C, SIGTERM, SIGHUP) resumes
where it stopped when the same command runs again. The report is rebuilt afterwards
unless ``--no-report``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.cli.console import STATUS_STYLE, console, err
from bench.metrics.aggregate import match_seconds
from bench.report.format import format_number
from bench.run.labels import record_key, short_labels

__all__ = ["cmd_run", "results_table"]

_COLUMNS = (
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


def results_table(records: list[dict[str, Any]]) -> Table:
    """The console table of finished runs: one row per run record."""
    table = Table(title="Results")
    for col in _COLUMNS:
        table.add_column(
            col, justify="left" if col in ("dataset", "matcher", "status") else "right"
        )
    labels = short_labels(records)
    for rec in records:
        m = rec.get("person") or {}
        status = rec["status"]
        rps = (rec.get("throughput") or {}).get("records_per_s")
        table.add_row(
            rec["dataset"]["name"],
            labels[record_key(rec)],
            f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
            format_number(m.get("precision")),
            format_number(m.get("recall")),
            format_number(m.get("f1")),
            format_number(m.get("bcubed_f1")),
            f"{m['n_clusters']}/{m['n_entities']}" if "n_clusters" in m else "-",
            format_number(m.get("largest_cluster")),
            f"{rps:,.0f}" if rps else "-",
            format_number(match_seconds(rec), 2),
            f"{rec.get('peak_rss_bytes', 0) / 1024**2:,.0f}",
        )
    return table


class _Display:
    """What both progress displays keep: the suite, the records so far, the run labels."""

    def __init__(self, suite_name: str, store_dir: Path, retry_failed: bool) -> None:
        self.suite_name = suite_name
        self.store_dir = store_dir
        self.retry_failed = retry_failed
        self.records: list[dict[str, Any]] = []
        #: run key -> the run's label (:func:`plan_labels`), set when the runs are planned
        self.labels: dict[str, str] = {}


class _LiveRun(_Display):
    """The live view of a suite run: the results table above a progress bar.

    Its methods are the callbacks :func:`bench.run.runner.run_suite` reports to.
    """

    def __init__(self, suite_name: str, store_dir: Path, retry_failed: bool) -> None:
        super().__init__(suite_name, store_dir, retry_failed)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task: TaskID | None = None
        self.live: Live | None = None

    def view(self) -> Group:
        """What the live display shows now."""
        return Group(results_table(self.records), self.progress)

    def generating(self, desc: str, frac: float) -> None:
        """Progress of dataset generation (before the runs are planned)."""
        if self.task is None:
            self.task = self.progress.add_task("generating data", total=100)
        self.progress.update(
            self.task, completed=int(frac * 100), description=f"generating: {desc}"
        )

    def planned(self, runs: list[Any], done: set[str]) -> None:
        """The runs of the suite are known; say how many are stored already."""
        self.task = self.progress.add_task(f"suite {self.suite_name}", total=len(runs))
        self.labels = plan_labels(runs)
        for line in plan_lines(runs, done, self.store_dir, self.retry_failed):
            self.progress.console.print(line)

    def started(self, run: Any) -> None:
        """A run starts."""
        self.progress.update(self.task, description=f"running {run_title(run, self.labels)}")

    def finished(self, run: Any, rec: dict[str, Any], skipped: bool) -> None:
        """A run is stored (or was already): add its row."""
        self.records.append(rec)
        self.progress.advance(self.task)
        if self.live is not None:
            self.live.update(self.view())


def plan_lines(runs: list[Any], done: set[str], store_dir: Path, retry_failed: bool) -> list[str]:
    """What to say once the runs are planned: how many are stored, how many retried."""
    from bench.run.results import RunStore

    lines = []
    if done:
        lines.append(
            f"{len(done)} of {len(runs)} run(s) already stored: skipped (use --force to redo)"
        )
    if retry_failed:
        # with --retry-failed, the stored runs left to run are exactly the failed ones
        store = RunStore(store_dir)
        retry = sum(r.key not in done and store.exists(r.key) for r in runs)
        lines.append(
            f"retrying {retry} stored run(s) that failed"
            if retry
            else "no stored run failed: nothing to retry"
        )
    return lines


def plan_labels(runs: list[Any]) -> dict[str, str]:
    """The label of each planned run (by run key), as the report will show it.

    The same :func:`~bench.run.labels.short_labels` over the suite's configurations;
    a matcher's tags (``needs_labels`` marks it held-out) come from its class.
    """
    from bench.run.registry import RegistryError, load_matcher_class

    tags: dict[str, list[str]] = {}
    for name in {r.matcher for r in runs}:
        try:
            tags[name] = sorted(getattr(load_matcher_class(name), "tags", ()))
        except RegistryError:
            tags[name] = []
    recs = {
        r.key: {
            "matcher": {"name": r.matcher, "params": r.params, "tags": tags[r.matcher]},
            "engine": {"kind": getattr(r, "engine", "duckdb")},
        }
        for r in runs
    }
    labels = short_labels(recs.values())
    return {key: labels[record_key(rec)] for key, rec in recs.items()}


def run_title(run: Any, labels: dict[str, str]) -> str:
    """A planned run as progress lines show it: ``exact keys=email on NAME #0``."""
    return f"{labels.get(run.key, run.matcher)} on {run.dataset.name} #{run.repeat}"


def _clock(seconds: float) -> str:
    """Elapsed time as ``H:MM:SS``."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _PlainRun(_Display):
    """Progress for a log (stdout is not a terminal): one flushed line per event.

    The same callbacks as :class:`_LiveRun`; every line starts with the time elapsed
    since the command started, and a finished run says how long it took and its status.
    """

    def __init__(self, suite_name: str, store_dir: Path, retry_failed: bool) -> None:
        super().__init__(suite_name, store_dir, retry_failed)
        self.t0 = time.monotonic()
        self.run_t0 = self.t0
        self.n_runs = 0
        self.last_desc = ""

    def say(self, text: str) -> None:
        """Print one plain line, prefixed by the elapsed time, and flush it."""
        console.out(f"[{_clock(time.monotonic() - self.t0)}] {text}", highlight=False)
        console.file.flush()

    def generating(self, desc: str, frac: float) -> None:
        """Dataset generation: one line per phase (not per percent)."""
        if desc != self.last_desc:
            self.last_desc = desc
            self.say(f"generating: {desc}")

    def planned(self, runs: list[Any], done: set[str]) -> None:
        """The runs of the suite are known."""
        self.n_runs = len(runs)
        self.labels = plan_labels(runs)
        self.say(f"suite {self.suite_name}: {len(runs)} run(s)")
        for line in plan_lines(runs, done, self.store_dir, self.retry_failed):
            self.say(line)

    def started(self, run: Any) -> None:
        """A run starts."""
        self.run_t0 = time.monotonic()
        self.say(f"start {len(self.records) + 1}/{self.n_runs} {run_title(run, self.labels)}")

    def finished(self, run: Any, rec: dict[str, Any], skipped: bool) -> None:
        """A run is stored (or was already)."""
        self.records.append(rec)
        if skipped:
            return
        took = time.monotonic() - self.run_t0
        self.say(
            f"done  {len(self.records)}/{self.n_runs} {run_title(run, self.labels)}: "
            f"{rec.get('status')} "
            f"in {took:.1f} s"
        )


def _stop_on_termination() -> None:
    """SIGTERM / SIGHUP stop like Ctrl-C: the current run is killed, nothing half-stored."""

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)


def _recompute(suite_dir: Path) -> int:
    from bench.run.runner import recompute

    n, problems = recompute(suite_dir)
    for p in problems:
        err.print(f"[yellow]not recomputed[/]: {escape(p)}")
    console.print(f"recomputed the metrics of {n} stored run(s) under {suite_dir}")
    return 1 if problems else 0


def _maybe_report(suite_dir: Path) -> None:
    try:
        from bench.report import build as report
    except ImportError:
        return
    path = report.build_report(suite_dir)
    written = [path.with_suffix(".md"), path, suite_dir / "figures", suite_dir / "summary.json"]
    console.print("report written: " + ", ".join(p.as_posix() for p in written), soft_wrap=True)


def _print_failures(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Print each failed run (error or timeout) with its reason; return them."""
    from bench.run.runner import FAILED_STATUSES

    failed = [r for r in records if r["status"] in FAILED_STATUSES]
    labels = short_labels(records)
    for r in failed:
        label = labels[record_key(r)]
        err.print(
            f"[red]{r['status']}[/] {escape(label)} on "
            f"{escape(r['dataset']['name'])}: {escape(str(r['error']))}"
        )
    return failed


def _retry_hint(args: argparse.Namespace, failed: list[dict[str, Any]], n_runs: int) -> None:
    """Say how many runs failed, of which status, and how to re-run only those."""
    from bench.run.runner import FAILED_STATUSES

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
        f"[red]{len(failed)} of {n_runs} run(s) failed[/] ({counts}); after fixing "
        f"the cause (or raising timeout_s / memory_limit), re-run only those with: "
        f"{escape(retry)}"
    )


def _execute(
    args: argparse.Namespace, suite: Any, display: _LiveRun | _PlainRun
) -> list[dict[str, Any]]:
    """Run the suite, reporting to ``display`` (under a live view on a terminal)."""
    from bench.run.runner import run_suite

    live = (
        Live(display.view(), console=console, refresh_per_second=4)
        if isinstance(display, _LiveRun)
        else contextlib.nullcontext()
    )
    with live:
        if isinstance(display, _LiveRun) and isinstance(live, Live):
            display.live = live
        return run_suite(
            suite,
            results_root=Path(args.results),
            force=args.force,
            retry_failed=args.retry_failed,
            on_plan=display.planned,
            on_start=display.started,
            on_done=display.finished,
            progress=display.generating,
        )


def engine_from_args(current: Any, args: argparse.Namespace) -> Any:
    """The :class:`~bench.run.suite.EngineSpec` ``current`` becomes with ``--engine`` /
    ``--master`` (``current`` itself when neither is given)."""
    from bench.run.suite import SuiteError, engine_spec

    kind, master = getattr(args, "engine", None), getattr(args, "master", None)
    if kind is None and master is None:
        return current
    if master is not None and (kind or current.kind) != "spark":
        msg = "--master applies to --engine spark only"
        raise SuiteError(msg)
    table: dict[str, Any] = {"kind": kind or current.kind}
    if table["kind"] == "spark":
        same = current.kind == "spark"
        table["master"] = master or (current.master if same else "local[2]")
        table["conf"] = dict(current.conf) if same else {}
    return engine_spec(table, "command line: --engine")


def with_engine(suite: Any, args: argparse.Namespace) -> Any:
    """``suite`` with the engine of ``--engine`` / ``--master`` when given."""
    import dataclasses

    return dataclasses.replace(suite, engine=engine_from_args(suite.engine, args))


def cmd_run(args: argparse.Namespace) -> int:
    """Run a suite of datasets x matchers; store one record per run; print the results.

    The suite is checked first (:func:`bench.run.suite_check.check_suite`): unknown matchers,
    parameters and columns stop the command (exit status 2) before any data is made.
    """
    from bench.run.suite import default_suite_path, load_suite
    from bench.run.suite_check import check_suite

    suite = with_engine(load_suite(args.suite or default_suite_path()), args)
    suite_dir = Path(args.results) / suite.name
    if args.recompute:
        return _recompute(suite_dir)
    check_suite(suite)
    _stop_on_termination()
    plain = not console.is_terminal
    display = (_PlainRun if plain else _LiveRun)(suite.name, suite_dir, args.retry_failed)
    try:
        records = _execute(args, suite, display)
    except KeyboardInterrupt:
        err.print(
            f"[yellow]interrupted[/]: {len(display.records)} run(s) stored under "
            f"{suite_dir}; run the same command again to resume"
        )
        return 130
    if plain and records:
        console.print(results_table(records))
    failed = _print_failures(records)
    console.print(f"records stored under {suite_dir}/runs")
    if not args.no_report:
        _maybe_report(suite_dir)
    if not failed:
        return 0
    _retry_hint(args, failed, len(records))
    # Failed runs are recorded results, so by default the command still succeeds (a broken
    # third-party plugin must not stop `make run`); --strict makes them fail CI.
    return 1 if args.strict else 0
