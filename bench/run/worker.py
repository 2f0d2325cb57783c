"""One run in its own process: ``python -m bench.run.worker JOB.json``.

The parent (:mod:`bench.run.runner`) writes the job, watches this process for its timeout
and memory limit (:mod:`bench.run.supervisor`), and turns what it finds into a run
record. This process loads the dataset, fits and matches (materialising the output
inside the timed region), validates the output, writes raw Parquet to the staging
directory, evaluates, and writes its partial result as JSON. A matcher tagged
``needs_labels`` also gets the labels of a seeded sample of persons
(:mod:`bench.data.labels`), whose records the evaluation leaves out. Whatever happens
inside the matcher ends as a result with a status and a reason; only a crash or a kill
leaves no result, which the parent reports.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.api import UnsupportedInput
from bench.data.dataset import Dataset, write_json_atomic
from bench.data.labels import TRAINING_FRACTION, TRAINING_RECORDS_FILE, training_sample
from bench.metrics.evaluate import evaluate_run
from bench.run.execution import (
    MalformedOutput,
    load_inputs,
    run_matcher,
    validate_clusters,
    validate_pairs,
)
from bench.run.registry import load_matcher_class
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


def execute_job(job: dict[str, Any], result: dict[str, Any]) -> None:
    """Carry out ``job``, filling ``result`` as phases complete."""
    timings = result.setdefault("timings", {})
    dataset = Dataset.open(job["dataset_path"])
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
    staging = Path(job["staging_dir"])
    staging.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    labels = None
    if "needs_labels" in result["matcher"]["tags"]:
        # the labels of a seeded sample of persons, which the evaluation leaves out
        labels = training_sample(dataset.truth_path, seed=job["seed"])
        result["training"] = {
            "fraction": TRAINING_FRACTION,
            "records": labels.num_rows,
            "persons": len(labels.column("entity_id").unique()),
        }
    con = engine.connect(
        threads=job["threads"],
        memory_limit=_duckdb_limit(job["memory_limit_bytes"]),
        temp_directory=staging / "spill",
    )
    ctx = load_inputs(
        con,
        dataset.records_path,
        dataset.tables,
        seed=job["seed"],
        threads=job["threads"],
        labels=labels,
    )
    timings["load"] = time.perf_counter() - t0

    outcome = run_matcher(matcher, ctx)
    timings.update(outcome.timings)
    result["diagnostics"] = outcome.diagnostics

    t0 = time.perf_counter()
    validate_clusters(con, outcome.clusters, ctx.records)
    if outcome.pairs is not None:
        validate_pairs(con, outcome.pairs, ctx.records)
    timings["validate"] = time.perf_counter() - t0
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
    del outcome, labels

    t0 = time.perf_counter()
    evaluation = evaluate_run(
        staging,
        dataset,
        threads=job["threads"],
        threshold=result["matcher"]["threshold"],
        heldout_seed=job.get("heldout_seed"),
    )
    timings["evaluate"] = time.perf_counter() - t0
    result.update(evaluation)


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
        result.update(status="error", error=f"malformed output: {exc}")
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
