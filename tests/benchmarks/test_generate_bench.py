"""Generation speed (pytest-benchmark): each generator recipe at the session's size.

``IDBENCH_BENCH_SIZE`` picks the size (``tiny`` by default, ``small`` under ``make
bench``). The output directory is removed in the untimed set-up, so every round
generates from scratch. xl (~10M records) is measured by hand: see docs/performance.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bench.data.datagen import generate
from bench.data.dataset import Dataset
from bench.data.recipes import load_recipe

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("name", ["cdp-realistic", "identity-graph", "dmp-crossdevice"])
def test_generate(benchmark: Any, tmp_path: Path, size: str, bench_helpers: Any, name: str) -> None:
    recipe = load_recipe(name, size=size)
    out = tmp_path / f"{name}-{size}"

    def setup() -> None:
        shutil.rmtree(out, ignore_errors=True)

    benchmark.pedantic(
        generate,
        args=(recipe,),
        kwargs={"seed": bench_helpers.seed, "out": out},
        setup=setup,
        rounds=3,
    )
    ds = Dataset.open(out)
    counts = ds.manifest.get("counts") or {}
    benchmark.extra_info.update(
        recipe=name,
        size=size,
        seed=bench_helpers.seed,
        records=ds.n_records,
        persons=counts.get("persons"),
        records_by_source=counts.get("records_by_source"),
    )
    for t in sorted((out / "tables").glob("*.parquet")):
        benchmark.extra_info[f"tables/{t.stem}"] = pq.ParquetFile(t).metadata.num_rows
    assert ds.n_records > 0
