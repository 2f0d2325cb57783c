"""One suite on both engines: the runner, the run records and one report.

The same suite runs on DuckDB and then with ``[engine] kind = "spark"`` into the same
results folder; the Spark runs get their own keys and records (the engine and Spark's
settings in ``record["engine"]``), build the same partitions as the DuckDB runs, a
DuckDB-only matcher is skipped with the reason, and one report shows both engines.
Each Spark run starts its own ``local[2]`` session in its worker process. Skipped
without pyspark or Java; run with ``make test-spark``.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java on PATH", allow_module_level=True)

from bench.report.build import build_report
from bench.run.runner import run_suite
from bench.run.suite import EngineSpec, load_suite

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SUITE = """name = "engines"
seed = 5
timeout_s = 600
memory_limit = "6GB"

[[datasets]]
recipe = "cdp-realistic"
size = "tiny"

[[matchers]]
name = "exact"
params = {keys = ["email"]}

[[matchers]]
name = "recordlinkage"
"""


def test_one_suite_on_both_engines_one_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # generated data lands in the temporary directory
    (tmp_path / "engines.toml").write_text(SUITE, encoding="utf-8")
    suite = load_suite(tmp_path / "engines.toml")
    results = tmp_path / "results"
    duck = run_suite(suite, results_root=results)
    spark_suite = dataclasses.replace(suite, engine=EngineSpec(kind="spark", master="local[2]"))
    spark = run_suite(spark_suite, results_root=results)

    by_engine = {
        "duckdb": {r["matcher"]["name"]: r for r in duck},
        "spark": {r["matcher"]["name"]: r for r in spark},
    }
    assert {r["engine"]["kind"] for r in duck} == {"duckdb"}
    assert {r["engine"]["kind"] for r in spark} == {"spark"}
    for name in ("exact",):
        d, s = by_engine["duckdb"][name], by_engine["spark"][name]
        assert d["status"] == s["status"] == "ok", (s.get("error"), s.get("traceback"))
        assert d["run_key"] != s["run_key"]
        assert s["engine"]["master"] == "local[2]" and s["engine"]["spark_version"]
        # the same partition, hence the same metrics
        raw = results / "engines" / "raw"
        left = pq.read_table(raw / d["run_key"] / "clusters.parquet").sort_by("record_id")
        right = pq.read_table(raw / s["run_key"] / "clusters.parquet").sort_by("record_id")
        assert left.column("cluster_id").to_pylist() == right.column("cluster_id").to_pylist()
        assert d["person"]["f1"] == pytest.approx(s["person"]["f1"], rel=1e-12)
    # a matcher written for DuckDB only is skipped on Spark, with the reason
    rl = by_engine["spark"]["recordlinkage"]
    assert rl["status"] == "skipped"
    assert "engine is spark" in rl["error"]
    assert by_engine["duckdb"]["recordlinkage"]["status"] == "ok"

    build_report(results / "engines")
    md = (results / "engines" / "report.md").read_text(encoding="utf-8")
    assert "exact [spark]" in md and "exact" in md.replace("exact [spark]", "")
