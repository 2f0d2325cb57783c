"""Run a suite: plan the runs, execute each in its own process, store the records.

Every run is a separate ``python -m bench.run.worker`` process started in its own session,
on inputs staged apart from the dataset's truth (:mod:`bench.run.sandbox`). The parent
polls its resident memory (the whole process tree) and wall time, kills it past the
suite's ``memory_limit`` or ``timeout_s`` (:mod:`bench.run.supervisor`), evaluates the
raw outputs of an ``ok`` run against the truth once the process has ended, and stores a
record whatever happened: ``ok``, ``error`` (with the reason), ``timeout`` or
``skipped`` (the matcher does not apply to the dataset). Stored runs are skipped on the
next invocation unless ``force`` (re-run all) or ``retry_failed`` (re-run those stored as
``error`` or ``timeout``); a corrupt stored record is moved aside and its run run again.
Ctrl-C kills the current run, stores nothing half-written, and a re-run resumes where it
stopped. A re-run replaces a stored record only once its new record is written, so an
interrupted re-run keeps the old one. One run at a time writes a suite's results folder
(:mod:`bench.run.lock`); a folder that cannot be written is a
:class:`~bench.run.results.ResultsFolderError` naming it and the cause.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.data.dataset import Dataset, open_stored_path
from bench.data.labels import TRAINING_FRACTION, training_sample
from bench.metrics.evaluate import evaluate_run
from bench.run.environment import environment
from bench.run.labels import matcher_label
from bench.run.lock import results_lock
from bench.run.registry import RegistryError, load_matcher_class
from bench.run.results import SCHEMA_VERSION, RunStore, folder_error, run_key
from bench.run.sandbox import stage_inputs
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
    #: The engine the matcher runs on (part of the key unless DuckDB).
    engine: str = "duckdb"

    def label(self) -> str:
        """Short description for progress displays (the report's label of the configuration)."""
        return f"{matcher_label(self.matcher, self.params)} on {self.dataset.name} #{self.repeat}"


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
                        engine=suite.engine.kind,
                    )
                    runs.append(
                        PlannedRun(
                            key,
                            ds,
                            mspec.name,
                            params,
                            repeat,
                            suite.seed + repeat,
                            heldout,
                            suite.engine.kind,
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
    """The job description the worker (:mod:`bench.run.worker`) reads.

    It names no path into the dataset: the matcher may read the job file too. Every path
    is absolute: the worker changes its working directory to the inputs folder.
    """
    tmp, staging = tmp.resolve(), staging.resolve()
    return {
        "inputs_dir": str(tmp / "inputs"),
        "spill_dir": str(tmp / "spill"),
        "matcher": run.matcher,
        "params": run.params,
        "seed": run.seed,
        "threads": suite.threads,
        "memory_limit_bytes": suite.memory_limit_bytes,
        "staging_dir": str(staging),
        "result_path": str(tmp / "result.json"),
        "python_path": [str(Path(p).resolve()) for p in suite.python_path],
        "engine": suite.engine.to_dict(),
    }


def _stage(run: PlannedRun, suite: Suite, tmp: Path) -> dict[str, Any] | None:
    """Stage the run's inputs under ``tmp``; return the record's ``training`` facts of a
    supervised run (whose training labels are staged too), else ``None``."""
    (tmp / "spill").mkdir()
    if not _needs_labels(run.matcher, suite):
        stage_inputs(run.dataset, tmp / "inputs")
        return None
    # the labels of a seeded sample of persons, which the evaluation leaves out
    labels = training_sample(run.dataset.truth_path, seed=run.seed)
    stage_inputs(run.dataset, tmp / "inputs", labels)
    return {
        "fraction": TRAINING_FRACTION,
        "records": labels.num_rows,
        "persons": len(labels.column("entity_id").unique()),
    }


def _run_process(run: PlannedRun, suite: Suite, store: RunStore, staging: Path) -> ProcessOutcome:
    """Run the worker on staged inputs; its raw outputs land in ``staging``."""
    log_path = _log_path(store, run.key)
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".job-") as name:
        tmp = Path(name)
        training = _stage(run, suite, tmp)
        outcome = run_process(_job(run, suite, staging, tmp), tmp / "job.json", log_path, suite)
    if training is not None and outcome.result:
        outcome.result["training"] = training
    return outcome


def _evaluate(run: PlannedRun, suite: Suite, staging: Path, outcome: ProcessOutcome) -> None:
    """Score an ``ok`` run's raw outputs against the truth, now that its process ended.

    A failed evaluation turns the run into an error, with the traceback.
    """
    if outcome.status != "ok":
        return
    t0 = time.perf_counter()
    try:
        evaluation = evaluate_run(
            staging,
            run.dataset,
            threads=suite.threads,
            threshold=outcome.result.get("matcher", {}).get("threshold"),
            heldout_seed=run.seed if run.heldout else None,
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded run
        outcome.status = "error"
        outcome.error = f"evaluation failed: {type(exc).__name__}: {exc}"
        outcome.result["traceback"] = traceback.format_exc(limit=20)
        return
    outcome.result.setdefault("timings", {})["evaluate"] = time.perf_counter() - t0
    outcome.result.update(evaluation)


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
        # what the matcher ran on; the worker adds the engine's own settings
        "engine": {**suite.engine.to_dict(), **result.pop("engine", {})},
        **result,  # person / household metrics, output summary, diagnostics, traceback
        "environment": environment(),
    }


def execute_run(run: PlannedRun, suite: Suite, store: RunStore) -> dict[str, Any]:
    """Execute one planned run in a child process and store its record.

    Raises
    ------
    ResultsFolderError
        The results folder cannot be written (read-only, disk full); nothing of the run
        is left in it.
    """
    staging = None
    try:
        staging = store.new_staging_dir(run.key)
        load_start = _load_average()
        outcome = _run_process(run, suite, store, staging)
        load_end = _load_average()
        _evaluate(run, suite, staging, outcome)
        record = _record(run, suite, outcome)
        # the machine is often shared: its load beside the timings says how to read them
        record["load_average"] = {"start": load_start, "end": load_end}
        store.store(record, staged_raw=staging if outcome.status == "ok" else None, new_run=True)
    except OSError as exc:
        raise folder_error(store.root, exc) from exc
    finally:
        if staging is not None:  # moved into place when stored; else dropped
            shutil.rmtree(staging, ignore_errors=True)
    return record


def _load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``None`` where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not on Linux/macOS
        return None


def _stored_records(
    store: RunStore, runs: list[PlannedRun], *, retry_failed: bool
) -> dict[str, dict[str, Any]]:
    """The stored records of ``runs`` that need no re-run, by key.

    Corrupt records are moved aside (:meth:`RunStore.read_stored`), so their runs run
    again; with ``retry_failed`` so do the runs stored with a failed status.
    """
    stored = {}
    for run in runs:
        rec = store.read_stored(run.key)
        if rec is not None and not (retry_failed and rec.get("status") in FAILED_STATUSES):
            stored[run.key] = rec
    return stored


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
    with results_lock(store.root):
        runs = plan_suite(suite, progress=progress)
        stored = {} if force else _stored_records(store, runs, retry_failed=retry_failed)
        if on_plan:
            on_plan(runs, set(stored))
        records = []
        for run in runs:
            if run.key in stored:
                rec = stored[run.key]
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
        with results_lock(store_root):
            updated += _recompute_store(store, threads, problems)
    return updated, problems


def _fill_lens(matcher: dict[str, Any]) -> None:
    """Give a record stored before matchers declared their lens the registered one.

    Only a missing ``lens`` key is filled (from the class registered under the record's
    matcher name, when it still loads); a stored lens is never changed.
    """
    if "lens" in matcher:
        return
    try:
        cls = load_matcher_class(matcher["name"])
    except Exception:  # noqa: BLE001 - an unloadable plugin keeps its record as it is
        return
    matcher["lens"] = getattr(cls, "lens", None) or None


def _recompute_store(store: RunStore, threads: int, problems: list[str]) -> int:
    """Recompute the ``ok`` runs of one suite's folder; return how many were updated."""
    updated = 0
    records = store.records()
    # datasets with a supervised run: every run on them is also scored on the
    # held-out persons of its seed (as the runner does for such a suite)
    supervised = {(r.get("dataset") or {}).get("fingerprint") for r in records if r.get("training")}
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
            ds = Dataset.open(open_stored_path(rec["dataset"]["path"]))
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
        _fill_lens(rec["matcher"])
        rec["timings"]["evaluate"] = time.perf_counter() - t0
        rec["recomputed_at"] = datetime.now(UTC).isoformat()
        rec["environment_recompute"] = environment()
        store.update(rec)
        updated += 1
    return updated
