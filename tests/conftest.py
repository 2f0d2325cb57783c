"""Shared fixtures: a tiny hand-made dataset in the documented layout."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data.dataset import write_manifest
from bench.testing import fixture_records, fixture_tables

TESTS_DIR = Path(__file__).parent


def write_fixture_dataset(root: Path, *, name: str = "fixture") -> Path:
    """Write the conformance fixture as a dataset directory; return its path."""
    records, truth = fixture_records()
    (root / "tables").mkdir(parents=True, exist_ok=True)
    (root / "truth").mkdir(parents=True, exist_ok=True)
    pq.write_table(records, root / "records.parquet")
    for tname, table in fixture_tables(records).items():
        pq.write_table(table, root / "tables" / f"{tname}.parquet")
    ids = records["record_id"].to_pylist()
    pq.write_table(
        pa.table(
            {
                "record_id": pa.array(ids, pa.int64()),
                "person_id": pa.array([truth[i] for i in ids], pa.int64()),
                # persons 0 and 1 share a household; the others live alone
                "household_id": pa.array(
                    [0 if truth[i] <= 1 else truth[i] for i in ids], pa.int64()
                ),
            }
        ),
        root / "truth" / "records.parquet",
    )
    write_manifest(
        root,
        name=name,
        kind="fixture",
        recipe={"fixture": "bench.testing"},
        seed=None,
        generator={"name": "tests.conftest", "version": "1"},
    )
    return root


@pytest.fixture(scope="session")
def fixture_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conformance fixture written once per session as a dataset directory."""
    return write_fixture_dataset(tmp_path_factory.mktemp("fixture-dataset"))


#: Registered matchers whose conformance checks take seconds each (Splink and
#: recordlinkage start their own machinery on every call; the anonymous ones score
#: pairs with EM): slow, so the quick loop
#: (``pytest -m "not slow"``) still checks every other built-in matcher.
SLOW_CONFORMANCE = frozenset(
    {"splink", "recordlinkage", "hybrid", "anonymous", "anonymous-supervised"}
)


#: ``make test-spark`` sets this to run the tests marked ``spark``; the default suite
#: skips them (a JVM per session, minutes on 2 cores) and says how to run them.
SPARK_TESTS_ENV = "IDBENCH_SPARK_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests that are slow by where they live; skip the Spark tests.

    Benchmarks (``tests/benchmarks/``) time real work, and the conformance checks of the
    matchers in :data:`SLOW_CONFORMANCE` fit real models; every other slow test carries
    ``pytest.mark.slow`` in its own module. Tests marked ``spark`` are skipped unless
    :data:`SPARK_TESTS_ENV` is ``1`` (``make test-spark``).
    """
    import os

    run_spark = os.environ.get(SPARK_TESTS_ENV) == "1"
    skip = pytest.mark.skip(
        reason=f"Spark tests run with `make test-spark` ({SPARK_TESTS_ENV}=1; needs the "
        "[spark] extra and Java)"
    )
    for item in items:
        in_benchmarks = (TESTS_DIR / "benchmarks") in Path(item.path).parents
        callspec = getattr(item, "callspec", None)
        matcher = callspec.params.get("matcher") if callspec is not None else None
        if in_benchmarks or getattr(matcher, "name", None) in SLOW_CONFORMANCE:
            item.add_marker(pytest.mark.slow)
        if not run_spark and "spark" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def spark():  # -> pyspark.sql.SparkSession, imported only when a Spark test asks for it
    """One ``local[2]`` Spark session for every Spark test of the session."""
    from bench.sql.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_engine(spark, tmp_path_factory: pytest.TempPathFactory):
    """A Spark engine over the session's ``local[2]`` session, one per test module."""
    from bench.sql.spark import SparkEngine

    engine = SparkEngine(spark, tmp_path_factory.mktemp("spark-scratch"))
    yield engine
    engine.close()
