"""One run in its own process: ``python -m bench.run.worker JOB.json``.

The parent (:mod:`bench.run.runner`) stages the run's inputs (:mod:`bench.run.sandbox`),
writes the job, watches this process for its timeout and memory limit
(:mod:`bench.run.supervisor`), evaluates the raw outputs once this process has ended and
turns what it finds into a run record. This process loads the staged inputs into a
DuckDB connection confined to them, fits and matches (materialising the output inside
the timed region) with the inputs folder as working directory, validates the output,
writes raw Parquet to the staging directory and writes its partial result as JSON. It
never learns where the dataset or its truth is. A matcher tagged ``needs_labels`` also
gets the labels of a seeded sample of persons (:mod:`bench.data.labels`), staged by the
parent; the evaluation leaves their records out. Whatever happens inside the matcher
ends as a result with a status and a reason; only a crash or a kill leaves no result,
which the parent reports.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.api import Matcher, UnsupportedInput
from bench.data.dataset import write_json_atomic
from bench.data.labels import TRAINING_RECORDS_FILE
from bench.run.execution import (
    MalformedOutput,
    load_inputs,
    run_matcher,
    validate_clusters,
    validate_pairs,
)
from bench.run.registry import load_matcher_class
from bench.run.sandbox import staged_inputs
from bench.sql import engine

log = logging.getLogger("bench.run.worker")


def peak_rss_bytes() -> int:
    """This process's peak resident memory.

    ``VmHWM`` belongs to the address space created at exec, so it measures the run
    alone; ``ru_maxrss`` (the fallback off Linux) carries over the high-water mark of
    the parent that forked us, which would charge every run with the harness's memory.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _duckdb_limit(memory_limit_bytes: int) -> str:
    # DuckDB's own buffer limit sits well below the process limit, so DuckDB spills to
    # disk before the parent has to kill the run.
    return f"{max(64, int(memory_limit_bytes * 0.6) // 1024**2)}MB"


def _registered_name(cls: type, spec: str) -> str:
    """``matcher 'exact'``: the name the matcher is registered under, and the suite's
    ``module:Class`` spec when the suite names it that way."""
    name = getattr(cls, "name", None) or spec
    return f"matcher {name!r}" + (f" ({spec})" if spec != name else "")


def _load_matcher(job: dict[str, Any], result: dict[str, Any]) -> tuple[type, Matcher]:
    """The job's matcher class and instance; its facts go to ``result["matcher"]``."""
    cls = load_matcher_class(job["matcher"], python_path=job.get("python_path"))
    matcher = cls(**job["params"])
    result["matcher"] = {
        "version": getattr(cls, "version", None),
        "lens": getattr(cls, "lens", None) or None,
        "label": repr(matcher),
        "tags": sorted(getattr(cls, "tags", ())),
        # every parameter, defaults included, and the score threshold the evaluation
        # splits candidate pairs at (None for matchers without scores)
        "resolved_params": matcher.get_params(),
        "threshold": getattr(matcher, "threshold", None),
    }
    return cls, matcher


def _spark_engine(spec: dict[str, Any], job: dict[str, Any], result: dict[str, Any]) -> Any:
    """A Spark engine at the job's master; its settings go to ``result["engine"]``.

    Spark reads the staged inputs itself: unlike the DuckDB connection it cannot be
    confined to the inputs folder, so a matcher on Spark could read other local files
    (``docs/spark.md`` says so). Checkpoints go to the run's spill folder.
    """
    try:
        from bench.sql.spark import SparkEngine, spark_session
    except ImportError as exc:  # pyspark missing: the run is skipped, not an error
        msg = f"engine spark needs the [spark] extra (pip install -e '.[spark]'): {exc}"
        raise UnsupportedInput(msg) from exc
    session = spark_session(
        master=spec.get("master", "local[2]"),
        conf=spec.get("conf") or {},
        app_name=f"idbench {job['matcher']}",
    )
    checkpoints = Path(job["spill_dir"]) / "spark"
    checkpoints.mkdir(parents=True, exist_ok=True)
    eng = SparkEngine(session, scratch_dir=checkpoints, stop_on_close=True)
    result["engine"] = {"kind": "spark", **eng.settings()}
    return eng


def execute_job(job: dict[str, Any], result: dict[str, Any]) -> None:
    """Carry out ``job``, filling ``result`` as phases complete."""
    timings = result.setdefault("timings", {})
    cls, matcher = _load_matcher(job, result)
    staging = Path(job["staging_dir"])
    staging.mkdir(parents=True, exist_ok=True)
    inputs = Path(job["inputs_dir"])
    os.chdir(inputs)  # relative paths in the matcher lead to its inputs, nowhere else

    t0 = time.perf_counter()
    records, tables, labels_path = staged_inputs(inputs)
    labels = pq.read_table(labels_path) if labels_path is not None else None
    con = engine.connect(
        threads=job["threads"], memory_limit=_duckdb_limit(job["memory_limit_bytes"])
    )
    engine.confine(con, allowed_directories=[inputs], temp_directory=job["spill_dir"])
    spec = job.get("engine") or {"kind": "duckdb"}
    if spec["kind"] == "duckdb":
        target: Any = con
    else:  # the matcher's SQL goes to Spark; DuckDB keeps the records to validate against
        target = _spark_engine(spec, job, result)
        engine.register_parquet(con, "records", records)
    ctx = load_inputs(
        target, records, tables, seed=job["seed"], threads=job["threads"], labels=labels
    )
    timings["load"] = time.perf_counter() - t0

    try:
        outcome = run_matcher(matcher, ctx)
        timings.update(outcome.timings)
        result["diagnostics"] = outcome.diagnostics

        t0 = time.perf_counter()
        validate_clusters(con, outcome.clusters, ctx.records)
        if outcome.pairs is not None:
            validate_pairs(con, outcome.pairs, ctx.records)
        timings["validate"] = time.perf_counter() - t0
    except MalformedOutput as exc:
        msg = f"{_registered_name(cls, job['matcher'])} returned malformed output: {exc}"
        raise MalformedOutput(msg) from exc
    finally:
        if target is not con:
            target.close()
    con.close()

    t0 = time.perf_counter()
    pq.write_table(
        outcome.clusters.select(["record_id", "cluster_id"]), staging / "clusters.parquet"
    )
    if outcome.pairs is not None:
        pq.write_table(
            outcome.pairs.select(["record_id_l", "record_id_r", "score"]), staging / "pairs.parquet"
        )
    if labels is not None:
        pq.write_table(labels.select(["record_id"]), staging / TRAINING_RECORDS_FILE)
    timings["store"] = time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the job file given as the only argument."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    result: dict[str, Any] = {"status": "error", "error": None}
    try:
        execute_job(job, result)
        result["status"] = "ok"
    except UnsupportedInput as exc:
        result.update(status="skipped", error=f"matcher does not apply to this dataset: {exc}")
    except MalformedOutput as exc:
        result.update(status="error", error=str(exc))
    except MemoryError:
        result.update(status="error", error="out of memory (MemoryError inside the run)")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded run
        result.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=20),
        )
    result["peak_rss_self_bytes"] = peak_rss_bytes()
    write_json_atomic(job["result_path"], result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
