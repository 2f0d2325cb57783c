"""Every built-in matcher on a generated dataset, and evaluation of a real run's output.

Set-up (a fresh DuckDB connection with the records and auxiliary tables loaded, as the
run worker does) is not timed; the timed target is :func:`bench.run.execution.run_matcher`:
fit + match + materialising the clusters (and pairs). Quality (pairwise and B-cubed
precision / recall / F1 against the person truth) and record counts go into
``benchmark.extra_info`` so the saved JSON carries quality beside speed.

Each matcher runs on the recipe where it has something to resolve: the first-party
matchers on ``cdp-realistic``, the login bridge and the hybrid on ``identity-graph``
(logins and cookies), the anonymous matcher on ``dmp-crossdevice``. Matchers that are
not registered in this checkout (``anonymous``, ``hybrid`` while being written) are
skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bench.data.dataset import Dataset
from bench.metrics.evaluate import evaluate_run
from bench.run.execution import load_inputs, run_matcher
from bench.run.registry import load_matcher_class
from bench.sql import engine

pytestmark = pytest.mark.bench

#: matcher name -> (recipe, constructor parameters, rounds when timing is enabled)
MATCHERS: dict[str, tuple[str, dict[str, Any], int]] = {
    "singletons": ("cdp-realistic", {}, 5),
    "exact": ("cdp-realistic", {"keys": ["email"]}, 5),
    "cascade": ("cdp-realistic", {}, 5),
    "cascade-guarded": ("cdp-realistic", {}, 5),
    "login-bridge": ("identity-graph", {}, 5),
    "splink": ("cdp-realistic", {}, 3),
    "recordlinkage": ("cdp-realistic", {}, 3),
    "anonymous": ("dmp-crossdevice", {}, 3),
    "hybrid": ("identity-graph", {}, 3),
}


def _matcher_class(name: str) -> type:
    try:
        return load_matcher_class(name)
    except Exception as exc:  # noqa: BLE001 - not registered (yet) in this checkout
        pytest.skip(f"matcher {name!r} is not available: {exc}")


@pytest.mark.parametrize("name", list(MATCHERS))
def test_matcher(benchmark: Any, generated: Any, bench_helpers: Any, name: str) -> None:
    recipe, params, rounds = MATCHERS[name]
    cls = _matcher_class(name)
    dataset: Dataset = generated(recipe)
    threads = bench_helpers.threads
    cons: list[Any] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        for con in cons:  # the previous round's connection
            con.close()
        cons.clear()
        con = engine.connect(threads=threads)
        cons.append(con)
        ctx = load_inputs(
            con, dataset.records_path, dataset.tables, seed=bench_helpers.seed, threads=threads
        )
        return (cls(**params), ctx), {}

    try:
        outcome = benchmark.pedantic(run_matcher, setup=setup, rounds=rounds, iterations=1)
    finally:
        for con in cons:
            con.close()

    assert outcome.clusters.num_rows == dataset.n_records
    m = bench_helpers.partition_metrics(dataset, outcome.clusters)
    benchmark.extra_info.update(
        matcher=name,
        params=params,
        dataset=dataset.name,
        fingerprint=dataset.fingerprint,
        threads=threads,
        pairs=None if outcome.pairs is None else outcome.pairs.num_rows,
        timings={k: round(v, 4) for k, v in outcome.timings.items()},
        **bench_helpers.quality_info(m),
    )
    if name != "singletons":  # every real matcher merges something on these recipes
        assert m["pred_pairs"] > 0


def test_evaluate_run(benchmark: Any, generated: Any, bench_helpers: Any, tmp_path: Path) -> None:
    """``evaluate_run`` (every metric of a run) on the cascade's output on identity-graph."""
    dataset: Dataset = generated("identity-graph")
    cls = load_matcher_class("cascade")
    con = engine.connect(threads=bench_helpers.threads)
    try:
        ctx = load_inputs(con, dataset.records_path, dataset.tables, seed=bench_helpers.seed)
        outcome = run_matcher(cls(), ctx)
    finally:
        con.close()
    pq.write_table(
        outcome.clusters.select(["record_id", "cluster_id"]), tmp_path / "clusters.parquet"
    )

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (tmp_path, dataset), {"threads": bench_helpers.threads}

    r = benchmark.pedantic(evaluate_run, setup=setup, rounds=5, iterations=1)
    assert r["person"]["n_records"] == dataset.n_records
    benchmark.extra_info.update(
        dataset=dataset.name,
        matcher="cascade",
        threads=bench_helpers.threads,
        steps={k: round(v, 4) for k, v in (r.get("evaluation_timings") or {}).items()},
        **bench_helpers.quality_info(r["person"]),
    )
