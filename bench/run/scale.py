"""Scaling sweeps: one recipe at several record counts, each matcher run on each, fitted.

``scale(["cascade", "splink"], sizes=(10_000, 100_000, 1_000_000))`` builds one dataset
per requested record count (the recipe's ``world.persons`` knob is set through an
override; records per person are calibrated on the recipe's ``tiny`` size), runs every
matcher on every dataset through the ordinary runner (:func:`bench.run.runner.run_suite`, so
each run is a separate process with the suite's timeout and memory limit, and its record
is stored under ``results/<suite_name>/`` like any run), then fits the cost exponent
``b`` of ``time = a * n^b`` per matcher by least squares on log(match time) vs
log(records) (:func:`bench.metrics.aggregate.fit_power_law`). Match time is fit + match
as the runner times it (loading and evaluation excluded).

Every point carries the run's quality beside its cost (pairwise precision, recall and
F1, the largest predicted cluster and the largest true entity), and a size whose F1
falls more than :data:`COLLAPSE_F1_DROP` below the F1 at the smallest size is flagged
as a *collapse* (:func:`flag_collapses`): a matcher that scales in time but merges a
city into one person at 3M must not pass for a scaling success.

Stored runs are reused, so a sweep interrupted at 10M resumes there; ``force`` redoes
them.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.metrics.aggregate import fit_power_law, match_seconds
from bench.run.suite import DatasetSpec, EngineSpec, MatcherSpec, Suite, parse_bytes

__all__ = [
    "COLLAPSE_F1_DROP",
    "DEFAULT_SIZES",
    "cmd_scale",
    "fit_table",
    "flag_collapses",
    "format_count",
    "nearest_size",
    "parse_count",
    "parse_sizes",
    "persons_for",
    "records_per_person",
    "scale",
]

log = logging.getLogger(__name__)

DEFAULT_SIZES: tuple[int, ...] = (10_000, 100_000, 1_000_000)

#: A size whose pairwise F1 is more than this below the F1 at the sweep's smallest
#: (successful) size is flagged as a quality collapse.
COLLAPSE_F1_DROP = 0.05

#: Typical records of the named sizes (datasets/README.md); used only to label datasets.
_NAMED_SIZES = {"tiny": 3_000, "small": 100_000, "large": 1_000_000, "xl": 10_000_000}
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}


def parse_count(text: str | int) -> int:
    """Read a record count: ``"10k"``, ``"1M"``, ``"2.5m"``, ``"10_000"``, ``"1e6"``.

    Raises
    ------
    ValueError
        When the text is not a positive count (the message shows the accepted forms).
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value: float = text
    else:
        s = str(text).strip().replace("_", "").replace(",", "")
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgb]?)", s, flags=re.IGNORECASE)
        if not m:
            msg = f"cannot read {text!r} as a record count (e.g. 10k, 100k, 1M, 2.5M, 50000)"
            raise ValueError(msg)
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value < 1 or not float(value).is_integer():
        msg = f"a record count must be a whole number >= 1, got {text!r}"
        raise ValueError(msg)
    return int(value)


def parse_sizes(text: str | Iterable[str | int]) -> tuple[int, ...]:
    """Comma-separated record counts (``"10k,100k,1M"``), sorted, duplicates dropped."""
    items = text.split(",") if isinstance(text, str) else list(text)
    sizes = sorted({parse_count(t) for t in items if str(t).strip()})
    if not sizes:
        msg = f"no record counts in {text!r} (e.g. 10k,100k,1M)"
        raise ValueError(msg)
    return tuple(sizes)


def format_count(n: int | float) -> str:
    """Short form of a record count: 10000 -> ``10k``, 1500000 -> ``1.5M``."""
    for div, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:g}"


def nearest_size(n_records: int) -> str:
    """The named size (tiny/small/large/xl) closest to ``n_records`` on a log scale."""
    return min(_NAMED_SIZES, key=lambda s: abs(math.log(n_records / _NAMED_SIZES[s])))


def records_per_person(recipe: str, *, seed: int = 1) -> float:
    """Records per person of ``recipe``, measured on its ``tiny`` size (generated if needed).

    Generation is linear in persons, so the ratio at ``tiny`` predicts larger sizes to a
    few per cent (cdp-realistic: 2.82 at tiny, 2.73 at large).
    """
    from bench.data.datagen import ensure_generated
    from bench.data.dataset import Dataset

    ds = Dataset.open(ensure_generated(recipe, "tiny", seed))
    persons = int(((ds.manifest.get("counts") or {}).get("persons")) or 0)
    if persons <= 0 or ds.n_records <= 0:
        msg = f"recipe {recipe}: the tiny dataset {ds.root} has no persons or records"
        raise ValueError(msg)
    return ds.n_records / persons


def persons_for(n_records: int, rpp: float) -> int:
    """``world.persons`` giving about ``n_records`` records at ``rpp`` records per person."""
    return max(1, round(n_records / rpp))


@dataclass
class _Point:
    requested: int
    persons: int
    n_records: int
    seconds: float | None
    peak_rss_bytes: int
    status: str
    error: str | None
    bcubed_f1: float | None
    f1: float | None
    run_key: str
    timings: dict[str, float] = field(default_factory=dict)
    precision: float | None = None
    recall: float | None = None
    largest_cluster: int | None = None
    largest_entity: int | None = None
    collapse: bool = False


def scale(
    matchers: Sequence[str],
    *,
    recipe: str = "cdp-realistic",
    sizes: Sequence[int | str] = DEFAULT_SIZES,
    seed: int = 1,
    results_root: Path = Path("results"),
    suite_name: str = "scaling",
    timeout_s: float = 1800.0,
    memory_limit: str | int = "16GB",
    threads: int = 2,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    engine: EngineSpec | None = None,
    force: bool = False,
    on_plan: Callable | None = None,
    on_start: Callable | None = None,
    on_done: Callable | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Run ``matchers`` on ``recipe`` at each record count of ``sizes``; fit time ~ n^b.

    Parameters
    ----------
    matchers
        Registered matcher names (or ``module:Class``); each runs on every size.
    recipe
        A generated recipe (bundled preset name or TOML path).
    sizes
        Requested record counts (ints or ``"10k"``/``"1M"`` strings). The actual counts
        differ by a few per cent; the fit uses the actual ones.
    seed
        Generator seed of every dataset (and the suite seed of the runs).
    results_root, suite_name
        Runs are stored under ``results_root / suite_name`` (skipped when already there).
    timeout_s, memory_limit, threads
        Per-run limits, as in a suite file (``memory_limit`` like ``"16GB"``).
    params
        Fixed constructor parameters per matcher name, e.g. ``{"exact": {"keys": ["email"]}}``.
    overrides
        Recipe overrides applied at every size besides ``world.persons``, e.g.
        ``{"noise.typo_scale": 2}`` (``idbench scale --set``).
    engine
        Where the matchers run (default: DuckDB); ``idbench scale --engine spark``.
    force
        Re-run runs that are already stored.
    on_plan, on_start, on_done, progress
        Passed to :func:`bench.run.runner.run_suite` (plan, run start/end, generation progress).

    Returns
    -------
    dict
        ``suite``, ``recipe``, ``seed``, ``records_per_person``, ``datasets`` (requested
        count, persons, actual records), ``points`` (per matcher: one entry per size with
        seconds, peak RSS, status, precision, recall, F1, B-cubed F1, largest cluster,
        largest true entity and ``collapse``), ``collapses`` (per matcher: the requested
        sizes flagged, see :func:`flag_collapses`) and ``fits`` (per matcher: ``a``,
        ``b``, ``r2``, ``b_tail`` = the slope between the two largest sizes; absent when
        fewer than two sizes succeeded).
    """
    from bench.run.registry import load_matcher_class
    from bench.run.runner import run_suite

    if not matchers:
        msg = "scale: give at least one matcher"
        raise ValueError(msg)
    counts = parse_sizes(sizes)
    for name in matchers:  # fail on a typo before generating any data
        load_matcher_class(name)
    rpp = records_per_person(recipe, seed=seed)
    plan = [(n, persons_for(n, rpp)) for n in counts]
    log.info("scale: %s at %.3f records/person -> %s", recipe, rpp, plan)
    suite = Suite(
        name=suite_name,
        description=f"scaling sweep of {', '.join(matchers)} on {recipe}",
        datasets=tuple(
            DatasetSpec(
                recipe=recipe,
                size=nearest_size(n),
                seed=seed,
                overrides={**(overrides or {}), "world.persons": persons},
            )
            for n, persons in plan
        ),
        matchers=tuple(
            MatcherSpec(name=m, params=dict((params or {}).get(m, {}))) for m in matchers
        ),
        seed=seed,
        timeout_s=float(timeout_s),
        memory_limit_bytes=parse_bytes(memory_limit),
        threads=threads,
        engine=engine or EngineSpec(),
    )
    records = run_suite(
        suite,
        results_root=Path(results_root),
        force=force,
        on_plan=on_plan,
        on_start=on_start,
        on_done=on_done,
        progress=progress,
    )
    datasets, points = _collect_points(records, {persons: n for n, persons in plan})
    collapses = {name: flag_collapses(pts) for name, pts in points.items()}
    return {
        "suite": suite_name,
        "results": str(Path(results_root) / suite_name),
        "recipe": recipe,
        "seed": seed,
        "records_per_person": rpp,
        "datasets": [datasets[k] for k in sorted(datasets)],
        "points": {k: [asdict(p) for p in v] for k, v in points.items()},
        "collapses": {name: sizes for name, sizes in collapses.items() if sizes},
        "fits": {name: fit for name, pts in points.items() if (fit := _fit(name, pts))},
    }


def _collect_points(
    records: Iterable[dict[str, Any]], requested_of: Mapping[int, int]
) -> tuple[dict[int, dict[str, Any]], dict[str, list[_Point]]]:
    """The datasets of a sweep (by requested count) and each matcher's point per size.

    ``requested_of`` maps the ``world.persons`` of a planned dataset to the record count
    it was planned for.
    """
    points: dict[str, list[_Point]] = defaultdict(list)
    datasets: dict[int, dict[str, Any]] = {}
    for rec in records:
        ds = rec.get("dataset") or {}
        persons = int(((ds.get("recipe") or {}).get("params") or {}).get("world", {})["persons"])
        n_actual = int(ds.get("n_records") or 0)
        requested = requested_of.get(persons, n_actual)
        datasets[requested] = {
            "requested": requested,
            "persons": persons,
            "n_records": n_actual,
            "path": ds.get("path"),
        }
        person = rec.get("person") or {}
        points[rec["matcher"]["name"]].append(
            _Point(
                requested=requested,
                persons=persons,
                n_records=n_actual,
                seconds=match_seconds(rec) if rec.get("status") == "ok" else None,
                peak_rss_bytes=int(rec.get("peak_rss_bytes") or 0),
                status=rec.get("status", "?"),
                error=rec.get("error"),
                bcubed_f1=person.get("bcubed_f1"),
                f1=person.get("f1"),
                run_key=rec.get("run_key", ""),
                timings={k: round(float(v), 3) for k, v in (rec.get("timings") or {}).items()},
                precision=person.get("precision"),
                recall=person.get("recall"),
                largest_cluster=person.get("largest_cluster"),
                largest_entity=person.get("largest_entity"),
            )
        )
    for pts in points.values():
        pts.sort(key=lambda p: p.n_records)
    return datasets, points


def flag_collapses(points: Sequence[_Point], drop: float = COLLAPSE_F1_DROP) -> list[int]:
    """Mark (``collapse = True``) the points whose F1 is more than ``drop`` below the first's.

    The reference is the F1 at the smallest record count that has one (``points`` sorted
    by record count, as :func:`_collect_points` leaves them); a point without an F1 (a
    failed run) is never flagged. Returns the requested counts of the flagged points.
    """
    scored = [p for p in points if p.f1 is not None]
    if not scored:
        return []
    reference = scored[0].f1 or 0.0
    for p in scored[1:]:
        p.collapse = (p.f1 or 0.0) < reference - drop
    return [p.requested for p in scored if p.collapse]


def _fit(name: str, points: Sequence[_Point]) -> dict[str, Any] | None:
    """The power-law fit of one matcher's successful sizes, with the slope of the top two."""
    ok = [p for p in points if p.seconds]
    fit = fit_power_law([p.n_records for p in ok], [p.seconds or 0.0 for p in ok])
    if fit is None:
        log.warning("scale: %s has fewer than two successful sizes; no fit", name)
        return None
    # Fixed costs (process start, Splink's u sampling) flatten the small sizes; the
    # slope between the two largest sizes is the better guide to what comes next.
    (n1, t1), (n2, t2) = fit.points[-2], fit.points[-1]
    b_tail = math.log(t2 / t1) / math.log(n2 / n1) if n2 > n1 else None
    log.info(
        "scale: %s time ~ %.3g * n^%.3f (R2 %s; largest two sizes: b=%s)",
        name,
        fit.a,
        fit.b,
        fit.r2,
        b_tail,
    )
    return {
        "a": fit.a,
        "b": fit.b,
        "r2": fit.r2,
        "b_tail": b_tail,
        "points": [list(p) for p in fit.points],
    }


def _cell(p: Mapping[str, Any] | None) -> str:
    """One size of one matcher: cost, then quality (red ``collapse`` when flagged)."""
    if p is None:
        return "-"
    if not p["seconds"]:
        return f"[red]{p['status']}[/]"
    lines = [f"{p['seconds']:.2f} s", f"{p['peak_rss_bytes'] / 1024**3:.1f} GiB"]
    if p.get("f1") is not None:
        lines.append(f"P {_num(p.get('precision'))} R {_num(p.get('recall'))}")
        f1 = f"F1 {p['f1']:.3f}"
        lines.append(f"[red]{f1} collapse[/]" if p.get("collapse") else f1)
        largest = p.get("largest_cluster")
        lines.append(f"max {_int(largest)} / {_int(p.get('largest_entity'))}")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _int(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"


def fit_table(result: Mapping[str, Any]) -> Any:
    """A rich table of a :func:`scale` result: cost and quality per size, fitted exponent.

    Each cell holds the match time (fit + match), the peak RSS, pairwise precision and
    recall, F1 (red and marked ``collapse`` when :func:`flag_collapses` flagged it) and
    the largest predicted cluster over the largest true entity.
    """
    from rich.table import Table

    sizes = [d["requested"] for d in result["datasets"]]
    table = Table(
        title=f"Scaling on {result['recipe']} (match time = fit + match; "
        "max = largest cluster / largest true entity)"
    )
    table.add_column("matcher")
    for d in result["datasets"]:
        table.add_column(f"{format_count(d['requested'])}\n({d['n_records']:,})", justify="right")
    table.add_column("b (all)", justify="right")
    table.add_column("R²", justify="right")
    table.add_column("b (top 2)", justify="right")
    for name, pts in result["points"].items():
        by_size = {p["requested"]: p for p in pts}
        fit = result["fits"].get(name)
        table.add_row(
            name,
            *(_cell(by_size.get(n)) for n in sizes),
            f"{fit['b']:.2f}" if fit else "-",
            f"{fit['r2']:.3f}" if fit and fit["r2"] is not None else "-",
            f"{fit['b_tail']:.2f}" if fit and fit["b_tail"] is not None else "-",
        )
    return table


def cmd_scale(args: Any) -> int:
    """``idbench scale``: run the sweep with a progress display, print the fit table.

    Expects ``args.matchers`` (comma-separated), ``args.sizes`` (``"10k,100k,1M"``),
    ``args.recipe``, ``args.seed``, ``args.results``, ``args.suite``, ``args.timeout``,
    ``args.memory_limit``, ``args.force`` and optionally ``args.json`` (a path to write
    the returned dict to) and ``args.overrides`` (a mapping of recipe overrides for every
    size). A quality collapse is printed in red beside failures; it does not change the
    exit status.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    matchers = [m.strip() for m in str(args.matchers).split(",") if m.strip()]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as prog:
        gen = prog.add_task("generating data", total=100)
        runs = None

        def on_gen(desc: str, frac: float) -> None:
            prog.update(gen, completed=int(frac * 100), description=f"generating: {desc}")

        def on_plan(planned: list[Any], done: set[str]) -> None:
            nonlocal runs
            runs = prog.add_task("runs", total=len(planned), completed=len(done))

        def on_start(run: Any) -> None:
            prog.update(runs, description=f"running {run.label()}")

        def on_done(run: Any, rec: dict[str, Any], skipped: bool) -> None:
            if not skipped:
                prog.advance(runs)

        result = scale(
            matchers,
            recipe=args.recipe,
            sizes=parse_sizes(args.sizes),
            seed=args.seed,
            results_root=Path(args.results),
            suite_name=args.suite,
            timeout_s=args.timeout,
            memory_limit=args.memory_limit,
            overrides=getattr(args, "overrides", None),
            engine=getattr(args, "engine_spec", None),
            force=args.force,
            on_plan=on_plan,
            on_start=on_start,
            on_done=on_done,
            progress=on_gen,
        )
    console.print(fit_table(result))
    failed = [
        (name, p) for name, pts in result["points"].items() for p in pts if p["status"] != "ok"
    ]
    for name, p in failed:
        console.print(f"[red]{p['status']}[/] {name} at {p['n_records']:,} records: {p['error']}")
    for name, sizes in result["collapses"].items():
        console.print(
            f"[red]collapse[/] {name}: F1 more than {COLLAPSE_F1_DROP} below the smallest "
            f"size's at {', '.join(format_count(n) for n in sizes)}"
        )
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        console.print(f"sweep written to {args.json}")
    console.print(f"records stored under {result['results']}")
    return 1 if failed else 0
