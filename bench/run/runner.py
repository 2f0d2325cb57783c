"""Run a suite: plan the runs, execute each in its own process, store the records.

Every run is a separate ``python -m bench.run.worker`` process started in its own session.
The parent polls its resident memory (the whole process tree) and wall time, kills it
past the suite's ``memory_limit`` or ``timeout_s`` (:mod:`bench.run.supervisor`), and
stores a record whatever happened: ``ok``, ``error`` (with the reason), ``timeout`` or ``skipped`` (the matcher
does not apply to the dataset). Stored runs are skipped on the next invocation unless
``force`` (re-run all) or ``retry_failed`` (re-run those stored as ``error`` or
``timeout``); Ctrl-C kills the current run, stores nothing half-written, and a re-run
resumes where it stopped. A re-run replaces a stored record only once its new record is
written, so an interrupted re-run keeps the old one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.data.dataset import Dataset
from bench.metrics.evaluate import evaluate_run
from bench.run.environment import environment
from bench.run.registry import RegistryError, load_matcher_class
from bench.run.results import SCHEMA_VERSION, RunStore, run_key
from bench.run.suite import DatasetSpec, Suite
from bench.run.supervisor import ProcessOutcome, run_process

__all__ = [
    "FAILED_STATUSES",
    "PlannedRun",
    "plan_suite",
    "recompute",
    "resolve_dataset",
    "run_suite",
]

log = logging.getLogger(__name__)

DEFAULT_RESULTS = Path("results")
#: Statuses of runs that did not produce a result, re-run by ``retry_failed``. ``skipped``
#: is not one: the matcher does not apply to the dataset, a re-run would skip it again.
FAILED_STATUSES = ("error", "timeout")


def resolve_dataset(spec: DatasetSpec, *, seed: int, progress: Callable | None = None) -> Path:
    """Directory of the dataset a suite entry names, building it first if needed."""
    if spec.path is not None:
        return spec.path
    assert spec.recipe is not None
    from bench.data import sources

    if sources.is_file_recipe(spec.recipe):
        return sources.prepare(spec.recipe)
    from bench.data.datagen import ensure_generated

    return ensure_generated(
        spec.recipe,
        size=spec.size or "tiny",
        seed=spec.seed if spec.seed is not None else seed,
        overrides=spec.overrides,
        progress=progress,
    )


@dataclass(frozen=True)
class PlannedRun:
    """One run to execute."""

    key: str
    dataset: Dataset
    matcher: str
    params: dict[str, Any]
    repeat: int
    seed: int
    #: Also score the run on the persons a supervised run of its seed is scored on
    #: (the suite has a matcher tagged ``needs_labels``).
    heldout: bool = False

    def label(self) -> str:
        """Short description for progress displays."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.matcher}({params}) on {self.dataset.name} #{self.repeat}"


def plan_suite(suite: Suite, *, progress: Callable | None = None) -> list[PlannedRun]:
    """Expand datasets x matchers x grids x repeats into runs with deterministic keys."""
    runs = []
    heldout = any(_needs_labels(m.name, suite) for m in suite.matchers)
    for dspec in suite.datasets:
        ds = Dataset.open(resolve_dataset(dspec, seed=suite.seed, progress=progress))
        for mspec in suite.matchers:
            version = _matcher_version(mspec.name, suite)
            for params in mspec.expand():
                for repeat in range(suite.repeats):
                    key = run_key(
                        dataset_fingerprint=ds.fingerprint,
                        matcher=mspec.name,
                        version=version,
                        seed=suite.seed + repeat,
                        params=params,
                        repeat=repeat,
                    )
                    runs.append(
                        PlannedRun(
                            key, ds, mspec.name, params, repeat, suite.seed + repeat, heldout
                        )
                    )
    return runs


def _matcher_version(name: str, suite: Suite) -> str | None:
    """The matcher's version, part of the run key: a new version is a new run."""
    try:
        cls = load_matcher_class(name, python_path=list(suite.python_path))
    except RegistryError:
        return None  # the run itself records the import failure
    return getattr(cls, "version", None)


def _needs_labels(name: str, suite: Suite) -> bool:
    try:
        cls = load_matcher_class(name, python_path=list(suite.python_path))
    except RegistryError:
        return False
    return "needs_labels" in getattr(cls, "tags", ())


def _fresh_staging(store: RunStore, key: str) -> Path:
    """An empty staging directory for the run's raw outputs."""
    staging = store.staging_dir(key)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _log_path(store: RunStore, key: str) -> Path:
    """Where the run process writes its output."""
    logs = store.root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{key}.log"
    if log_path.exists():
        # a re-run (--force, --retry-failed) keeps the last run's log beside the new one
        log_path.replace(logs / f"{key}.previous.log")
    return log_path


def _job(run: PlannedRun, suite: Suite, staging: Path, tmp: Path) -> dict[str, Any]:
    """The job description the worker (:mod:`bench.run.worker`) reads."""
    return {
        "dataset_path": str(run.dataset.root),
        "matcher": run.matcher,
        "params": run.params,
        "seed": run.seed,
        "heldout_seed": run.seed if run.heldout else None,
        "threads": suite.threads,
        "memory_limit_bytes": suite.memory_limit_bytes,
        "staging_dir": str(staging),
        "result_path": str(tmp / "result.json"),
        "python_path": [str(p) for p in suite.python_path],
    }


def _matcher_info(run: PlannedRun, suite: Suite, result: dict[str, Any]) -> dict[str, Any]:
    """The matcher facts the worker reported, else what its class declares."""
    cls_info = result.pop("matcher", {})
    if cls_info:
        return cls_info
    try:
        cls = load_matcher_class(run.matcher, python_path=list(suite.python_path))
        return {
            "version": getattr(cls, "version", None),
            "lens": getattr(cls, "lens", None) or None,
            "tags": sorted(cls.tags),
        }
    except Exception:  # noqa: BLE001 - the record still says which matcher failed
        return {}


def _record(run: PlannedRun, suite: Suite, outcome: ProcessOutcome) -> dict[str, Any]:
    """The run record of a finished run process."""
    result = outcome.result
    timings = result.pop("timings", {})
    timings["wall"] = outcome.wall
    match_time = timings.get("fit", 0.0) + timings.get("match", 0.0)
    ok = outcome.status == "ok"
    cls_info = _matcher_info(run, suite, result)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex,
        "run_key": run.key,
        "suite": suite.name,
        "status": outcome.status,
        "error": outcome.error,
        "started_at": outcome.started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "dataset": run.dataset.summary(),
        "matcher": {
            "name": run.matcher,
            "params": run.params,
            "label": cls_info.get("label") or f"{run.matcher}{run.params}",
            "version": cls_info.get("version"),
            "lens": cls_info.get("lens"),
            "tags": cls_info.get("tags", []),
            "resolved_params": cls_info.get("resolved_params"),
            "threshold": cls_info.get("threshold"),
        },
        "repeat": run.repeat,
        "seed": run.seed,
        "timings": timings,
        "throughput": {
            "records_per_s": run.dataset.n_records / match_time if ok and match_time > 0 else None
        },
        "peak_rss_bytes": outcome.peak,
        "limits": {
            "timeout_s": suite.timeout_s,
            "memory_limit_bytes": suite.memory_limit_bytes,
            "threads": suite.threads,
        },
        **result,  # person / household metrics, output summary, diagnostics, traceback
        "environment": environment(),
    }


def execute_run(run: PlannedRun, suite: Suite, store: RunStore) -> dict[str, Any]:
    """Execute one planned run in a child process and store its record."""
    staging = _fresh_staging(store, run.key)
    log_path = _log_path(store, run.key)
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".job-") as tmp:
        job = _job(run, suite, staging, Path(tmp))
        outcome = run_process(job, Path(tmp) / "job.json", log_path, suite)
    record = _record(run, suite, outcome)
    raw = staging if outcome.status == "ok" else None
    if raw is None:
        shutil.rmtree(staging, ignore_errors=True)
    store.store(record, staged_raw=raw, new_run=True)
    return record


def run_suite(
    suite: Suite,
    *,
    results_root: Path = DEFAULT_RESULTS,
    force: bool = False,
    retry_failed: bool = False,
    on_plan: Callable[[list[PlannedRun], set[str]], None] | None = None,
    on_start: Callable[[PlannedRun], None] | None = None,
    on_done: Callable[[PlannedRun, dict[str, Any], bool], None] | None = None,
    progress: Callable | None = None,
) -> list[dict[str, Any]]:
    """Execute every planned run of ``suite`` that is not stored yet.

    Parameters
    ----------
    suite
        The suite to run.
    results_root
        Records go to ``results_root/<suite name>``.
    force
        Re-run every run, stored or not.
    retry_failed
        Also re-run the stored runs whose status is in :data:`FAILED_STATUSES`
        (``error``, ``timeout``); stored ``ok`` and ``skipped`` runs are kept. Implied
        by ``force``.
    on_plan, on_start, on_done, progress
        Callbacks: the plan and the keys that will not be run; a run starting; a run's
        record and whether it was stored earlier; dataset generation progress.

    Returns
    -------
    list of dict
        The records of all runs of the plan, stored earlier or now.
    """
    store = RunStore(results_root / suite.name)
    runs = plan_suite(suite, progress=progress)
    done = {r.key for r in runs if store.exists(r.key)} if not force else set()
    if retry_failed:
        done = {k for k in done if store.read(k).get("status") not in FAILED_STATUSES}
    if on_plan:
        on_plan(runs, done)
    records = []
    for run in runs:
        if run.key in done:
            rec = store.read(run.key)
            if on_done:
                on_done(run, rec, True)
            records.append(rec)
            continue
        if on_start:
            on_start(run)
        rec = execute_run(run, suite, store)
        if on_done:
            on_done(run, rec, False)
        records.append(rec)
    return records


def _heldout_seed(rec: dict[str, Any], supervised: set[Any]) -> int | None:
    """The held-out seed a recompute uses: the stored one, else the run's own seed when
    a supervised run of its dataset is stored (as the runner would have done)."""
    stored = (rec.get("heldout") or {}).get("seed")
    if stored is not None:
        return int(stored)
    return rec.get("seed") if rec["dataset"]["fingerprint"] in supervised else None


def recompute(results_root: Path, *, threads: int = 2) -> tuple[int, list[str]]:
    """Re-derive the metrics of every stored ``ok`` run from its raw outputs.

    Returns the number of records updated and a list of problems (runs whose dataset
    is gone or changed, raw outputs missing).
    """
    updated, problems = 0, []
    for store_root in sorted({p.parent.parent for p in results_root.rglob("runs/*.json")}):
        store = RunStore(store_root)
        records = store.records()
        # datasets with a supervised run: every run on them is also scored on the
        # held-out persons of its seed (as the runner does for such a suite)
        supervised = {
            (r.get("dataset") or {}).get("fingerprint") for r in records if r.get("training")
        }
        for rec in records:
            rec.pop("_path", None)
            if rec.get("status") != "ok":
                continue
            key = rec["run_key"]
            raw = store.raw_dir(key)
            if not (raw / "clusters.parquet").is_file():
                problems.append(f"{key}: raw outputs missing in {raw}")
                continue
            try:
                ds = Dataset.open(rec["dataset"]["path"])
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
                continue
            if ds.fingerprint != rec["dataset"]["fingerprint"]:
                problems.append(
                    f"{key}: dataset {ds.root} changed since the run "
                    f"({ds.fingerprint} != {rec['dataset']['fingerprint']})"
                )
                continue
            t0 = time.perf_counter()
            try:
                evaluation = evaluate_run(
                    raw,
                    ds,
                    threads=threads,
                    threshold=rec["matcher"].get("threshold"),
                    heldout_seed=_heldout_seed(rec, supervised),
                )
            except Exception as exc:  # noqa: BLE001 - one bad run must not stop the others
                problems.append(f"{key}: evaluation failed: {type(exc).__name__}: {exc}")
                continue
            rec.update(evaluation)
            rec["timings"]["evaluate"] = time.perf_counter() - t0
            rec["recomputed_at"] = datetime.now(UTC).isoformat()
            rec["environment_recompute"] = environment()
            store.update(rec)
            updated += 1
    return updated, problems
