"""The deterministic matchers on Spark build exactly the partitions they build on DuckDB.

Each matcher runs on the same tiny generated datasets on both engines through the
harness's own loading and materialising (:func:`bench.run.execution.run_matcher`); the
partitions must be identical record for record, and every metric of the evaluation the
same. Skipped without pyspark or Java; run with ``make test-spark``.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java on PATH", allow_module_level=True)

from bench.data.datagen.pipeline import generate
from bench.data.dataset import Dataset
from bench.data.recipes import load_recipe
from bench.metrics.evaluate import evaluate_run
from bench.run.execution import load_inputs, run_matcher
from bench.sql.engine import connect
from bench.sql.spark import SparkEngine
from matchers.baseline import Exact
from matchers.cascade import Cascade, CascadeGuarded

pytestmark = [pytest.mark.spark]

MATCHERS = {
    "exact": lambda: Exact(keys=["email"]),
    "exact-two-keys": lambda: Exact(keys=["family_name", "postcode"]),
    "cascade": Cascade,
    "cascade-guarded": CascadeGuarded,
    # every guard on, with user values excluded (normalised like the column)
    "cascade-excluding": lambda: CascadeGuarded(exclude_values={"email": ["Info@Shop.example"]}),
}

#: (recipe, matcher): every matcher once, the guarded cascade with every guard and user
#: exclusions (each Spark statement costs ~0.1-0.4 s on local[2]; it runs hundreds).
CASES = [
    ("cdp-realistic", "exact"),
    ("cdp-realistic", "exact-two-keys"),
    ("identity-graph", "cascade"),
    ("identity-graph", "cascade-excluding"),
]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    """Tiny generated datasets of both recipes (seed 3)."""
    out = {}
    for recipe in {r for r, _ in CASES}:
        root = tmp_path_factory.mktemp(recipe)
        generate(load_recipe(recipe, size="tiny"), seed=3, out=root)
        out[recipe] = Dataset.open(root)
    return out


def _run(target: Any, ds: Dataset, name: str) -> Any:
    ctx = load_inputs(target, ds.records_path, ds.tables, threads=2)
    return run_matcher(MATCHERS[name](), ctx)


@pytest.mark.parametrize(("recipe", "name"), CASES)
def test_same_partition_and_metrics_on_both_engines(
    recipe: str, name: str, datasets: dict[str, Dataset], spark_engine: SparkEngine, tmp_path: Path
) -> None:
    dataset = datasets[recipe]
    con = connect(threads=2)
    duck = _run(con, dataset, name)
    con.close()
    spark = _run(spark_engine, dataset, name)
    left = dict(
        zip(*duck.clusters.select(["record_id", "cluster_id"]).to_pydict().values(), strict=True)
    )
    right = dict(
        zip(*spark.clusters.select(["record_id", "cluster_id"]).to_pydict().values(), strict=True)
    )
    assert len(left) == dataset.n_records
    assert right == left
    # something was linked: the comparison is not between two sets of singletons
    assert len(set(left.values())) < len(left)

    metrics = []
    for engine, outcome in (("duckdb", duck), ("spark", spark)):
        raw = tmp_path / engine
        raw.mkdir()
        pq.write_table(outcome.clusters, raw / "clusters.parquet")
        metrics.append(evaluate_run(raw, dataset, threads=2))
    assert _flat(metrics[0]["person"]) == pytest.approx(_flat(metrics[1]["person"]), rel=1e-9)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested metrics dict (NaN kept out: it never equals itself)."""
    out: dict[str, float] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool | str):
            out |= {} if math.isnan(value) else {prefix + key: float(value)}
    return out
