"""Shared set-up of the pytest-benchmark tests (``-m bench``).

Two modes, chosen by how pytest is called, not by editing the tests:

* **quick** (``make test``; pytest's addopts carry ``--benchmark-disable``): every
  benchmark body runs once, as a smoke test, on ``tiny`` generated datasets and
  :data:`QUICK_RECORDS` synthetic records; the whole directory stays well under a minute.
* **full** (``make bench``): ``--benchmark-enable`` times several rounds and saves JSON
  with ``machine_info`` and ``commit_info`` under ``results/benchmarks/``. The Makefile
  sets ``IDBENCH_BENCH_SIZE=small`` and ``IDBENCH_BENCH_RECORDS=1000000``.

Environment variables
---------------------
``IDBENCH_BENCH_SIZE``
    Size of the generated datasets (``tiny`` default, ``small``, ``large``, ``xl``).
``IDBENCH_BENCH_RECORDS``
    Records of the synthetic (``range()``-built) benchmarks of the deterministic
    matchers, the metrics and the evaluation (default :data:`QUICK_RECORDS`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from bench.data.datagen import ensure_generated
from bench.data.dataset import Dataset
from bench.data.recipes import SIZES
from bench.metrics.core import evaluate
from bench.sql import engine

#: Synthetic records in quick mode: big enough to exercise every SQL path, small enough
#: that a one-shot run of each benchmark costs well under a second.
QUICK_RECORDS = 50_000
#: Generator seed of every benchmark dataset (the quality gates use the same).
SEED = 1
#: DuckDB threads: the reference machine has 2 cores.
THREADS = 2


def bench_size() -> str:
    """``IDBENCH_BENCH_SIZE`` (default ``tiny``), checked against the recipe sizes."""
    size = os.environ.get("IDBENCH_BENCH_SIZE", "tiny")
    if size not in SIZES:
        msg = f"IDBENCH_BENCH_SIZE={size!r}: expected one of {', '.join(SIZES)}"
        raise pytest.UsageError(msg)
    return size


def bench_records(default: int = QUICK_RECORDS) -> int:
    """``IDBENCH_BENCH_RECORDS`` (default ``default``) as a positive int."""
    raw = os.environ.get("IDBENCH_BENCH_RECORDS", str(default))
    try:
        n = int(raw.replace("_", ""))
    except ValueError:
        n = 0
    if n < 1:
        msg = f"IDBENCH_BENCH_RECORDS={raw!r}: expected a positive integer"
        raise pytest.UsageError(msg)
    return n


@pytest.fixture(scope="session")
def size() -> str:
    """The generated-dataset size of this session."""
    return bench_size()


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory, size: str) -> Callable[[str], Dataset]:
    """``generated(recipe)``: the recipe at the session's size and :data:`SEED`.

    Each dataset is generated once per session into a temporary directory (tiny: well
    under a second each), so benchmarks never depend on ``datasets/generated/``.
    """
    root = tmp_path_factory.mktemp("bench-datasets")
    cache: dict[str, Dataset] = {}

    def get(recipe: str) -> Dataset:
        if recipe not in cache:
            cache[recipe] = Dataset.open(ensure_generated(recipe, size, SEED, root))
        return cache[recipe]

    return get


def partition_metrics(dataset: Dataset, clusters: pa.Table) -> dict[str, Any]:
    """Person-level metrics (:func:`bench.metrics.evaluate`) of ``clusters`` on ``dataset``."""
    con = engine.connect(threads=THREADS)
    try:
        engine.register_arrow(con, "bench_clusters", clusters.select(["record_id", "cluster_id"]))
        engine.register_parquet(con, "bench_truth", dataset.truth_path)
        return evaluate(con, "bench_clusters", "bench_truth", entity="person_id")
    finally:
        con.close()


def quality_info(m: dict[str, Any]) -> dict[str, Any]:
    """The quality figures every benchmark stores in ``benchmark.extra_info``."""
    keys = (
        "n_records",
        "n_clusters",
        "n_entities",
        "precision",
        "recall",
        "f1",
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
    )
    return {k: m.get(k) for k in keys}


@pytest.fixture(scope="session")
def bench_helpers() -> Any:
    """The module-level helpers, for test files (conftest is not importable by name)."""

    class Helpers:
        partition_metrics = staticmethod(partition_metrics)
        quality_info = staticmethod(quality_info)
        bench_records = staticmethod(bench_records)
        threads = THREADS
        seed = SEED
        root = Path(__file__).parent

    return Helpers
