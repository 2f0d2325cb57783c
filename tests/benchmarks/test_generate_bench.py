"""Generation speed (pytest-benchmark). xl is measured by hand: see datasets/README.md."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bench.datagen import generate
from bench.recipes import load_recipe


@pytest.mark.bench
@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("name", ["cdp-realistic", "identity-graph"])
def test_generate(benchmark, tmp_path: Path, name: str, size: str) -> None:
    recipe = load_recipe(name, size=size)
    out = tmp_path / f"{name}-{size}"

    def setup() -> None:
        shutil.rmtree(out, ignore_errors=True)

    benchmark.pedantic(
        generate, args=(recipe,), kwargs={"seed": 1, "out": out}, setup=setup, rounds=1
    )
    benchmark.extra_info["records"] = pq.ParquetFile(out / "records.parquet").metadata.num_rows
    for t in sorted((out / "tables").glob("*.parquet")):
        benchmark.extra_info[f"tables/{t.stem}"] = pq.ParquetFile(t).metadata.num_rows
