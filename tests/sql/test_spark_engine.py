"""The Spark engine (``bench.sql.spark``) against DuckDB on the same DuckDB SQL.

Runs a ``local[2]`` session (one per test session, ~8 s to start); skipped without
pyspark or Java.
"""

from __future__ import annotations

import itertools
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the Spark engine needs pyspark")
if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java on PATH", allow_module_level=True)

from bench.sql.engine import SQLError, connect, execute, query, query_one
from bench.sql.graph import capped_components, connected_components
from bench.sql.interface import UnsupportedOnEngine
from bench.sql.spark import SparkEngine
from matchers.cascade_rules import Rule, edges_sql, single_rule_clusters_sql
from matchers.normalise import (
    email_sql,
    identifier_sql,
    junk_sql,
    name_sql,
    phone_sql,
    postcode_sql,
)

pytestmark = [pytest.mark.spark]

#: Large, non-contiguous ids, as real datasets have.
BASE = 10**12 + 7


@pytest.fixture
def engine(spark, tmp_path: Path) -> Iterator[SparkEngine]:
    eng = SparkEngine(spark, tmp_path / "scratch")
    yield eng
    eng.close()


@pytest.fixture
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(threads=2)
    yield con
    con.close()


def _temp(name: str) -> str:
    return f"__idbench_m_{name}"


def _load(engine: SparkEngine, duck: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    """The same table as ``name`` in both engines."""
    engine.register_arrow(name, data)
    duck.register(name, data)


def _rows(con: object, sql: str) -> list[tuple]:
    return sorted((tuple(r.values()) for r in query(con, sql).to_pylist()), key=repr)


def _same(engine: SparkEngine, duck: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """Rows of ``sql`` on Spark, asserted equal to DuckDB's (order ignored)."""
    got = _rows(engine, sql)
    assert got == _rows(duck, sql), sql
    return got


def _edges(pairs: list[tuple[int, int]]) -> pa.Table:
    return pa.table(
        {
            "a": pa.array([a for a, _ in pairs], pa.int64()),
            "b": pa.array([b for _, b in pairs], pa.int64()),
        }
    )


# ----------------------------------------------------------------------------- Engine methods
def test_execute_query_and_query_one(engine: SparkEngine) -> None:
    engine.execute(
        "CREATE OR REPLACE TEMP TABLE \"t\" AS SELECT 1 AS a, 'x' AS s UNION ALL SELECT 2, NULL"
    )
    assert engine.query("SELECT a, s FROM t ORDER BY a").to_pylist() == [
        {"a": 1, "s": "x"},
        {"a": 2, "s": None},
    ]
    assert query_one(engine, "SELECT count(*) FILTER (WHERE s IS NULL) AS n FROM t") == {"n": 1}
    with pytest.raises(SQLError, match="expected one row"):
        engine.query_one("SELECT a FROM t")
    engine.execute("SELECT a FROM t")  # a query run for its effect


def test_create_table_materialises_and_create_view_reads_at_query_time(engine: SparkEngine) -> None:
    engine.create_table("base", "SELECT 1 AS a")
    engine.create_view("v", "SELECT a * 10 AS b FROM base")
    assert engine.tables["base"].checkpointed
    engine.create_table("base", "SELECT a + 1 AS a FROM base")  # rebuilt from itself
    assert engine.query("SELECT b FROM v").to_pylist() == [{"b": 20}]
    assert engine.tables["v"].frame is None  # a SQL view, resolved by name when read


def test_close_drops_what_the_engine_made(spark, tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "a.parquet")
    files = f"['{tmp_path}/a.parquet', '{tmp_path}/a.parquet']"
    eng = SparkEngine(spark)
    eng.create_table("t1", "SELECT 1 AS a")
    eng.execute(f"CREATE VIEW v1 AS SELECT * FROM read_parquet({files})")
    eng.register_arrow("f1", pa.table({"a": [1]}))
    assert eng.query_one("SELECT count(*) AS n FROM v1") == {"n": 2}
    eng.close()
    assert not eng.tables
    assert [t.name for t in spark.catalog.listTables() if t.name in ("t1", "v1", "f1")] == []
    assert not [t for t in spark.catalog.listTables() if t.name.startswith("__idbench_parquet")]


def test_drop_exists_and_columns(engine: SparkEngine) -> None:
    engine.create_table("t", "SELECT CAST(1 AS BIGINT) AS id, 'a' AS s, 1.5::DOUBLE AS x")
    assert engine.columns("t") == {"id": "bigint", "s": "string", "x": "double"}
    assert engine.exists("t") and engine.exists("T")
    engine.drop("t", "never_made")
    assert not engine.exists("t") and "t" not in engine.tables
    engine.execute("DROP TABLE IF EXISTS t")
    with pytest.raises(SQLError, match="does not exist"):
        engine.execute("DROP TABLE t")


def test_empty_table_insert_delete_rename_like_duckdb(
    engine: SparkEngine, duck: duckdb.DuckDBPyConnection
) -> None:
    script = [
        'CREATE OR REPLACE TEMP TABLE "out" (node BIGINT, label BIGINT)',
        "INSERT INTO out SELECT 1, 1 UNION ALL SELECT 2, 1",
        "INSERT INTO out (label, node) VALUES (3, 4)",
        "INSERT INTO out WITH s AS MATERIALIZED (SELECT 5 AS n) SELECT n, n FROM s",
        "DELETE FROM out WHERE node IN (SELECT 2) OR label = 5",
        "ALTER TABLE out RENAME TO kept",
    ]
    for sql in script:
        execute(engine, sql)
        execute(duck, sql)
    assert _same(engine, duck, "SELECT node, label FROM kept") == [(1, 1), (4, 3)]
    assert engine.columns("kept") == {"node": "bigint", "label": "bigint"}
    assert not engine.exists("out")
    with pytest.raises(SQLError, match="already exists"):
        engine.execute("CREATE TABLE kept AS SELECT 1 AS a")


def test_a_table_rebuilt_from_itself_50_times(engine: SparkEngine) -> None:
    # sqlglot's lazy views nest one level per step here (VIEW_EXCEED_MAX_NESTED_DEPTH);
    # checkpoints keep the plan flat and the replaced ones are freed.
    sc = engine.spark.sparkContext._jsc.sc()
    engine.execute('CREATE OR REPLACE TEMP TABLE "it" AS SELECT 0 AS i, 1 AS s')
    before = sc.getPersistentRDDs().size()
    for _ in range(50):
        engine.execute(
            'CREATE OR REPLACE TEMP TABLE "it_next" AS SELECT i + 1 AS i, s + i AS s FROM "it"'
        )
        engine.execute('DROP TABLE "it"')
        engine.execute('ALTER TABLE "it_next" RENAME TO "it"')
    assert engine.query_one("SELECT i, s FROM it") == {"i": 50, "s": 1 + sum(range(50))}
    assert sc.getPersistentRDDs().size() == before  # the 50 replaced checkpoints are freed


def test_parquet_round_trip_with_duckdb(
    engine: SparkEngine,
    duck: duckdb.DuckDBPyConnection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["Zoë", None, "Åsa"]})
    pq.write_table(data, tmp_path / "a.parquet")
    pq.write_table(data.slice(0, 1), tmp_path / "b.parquet")
    engine.read_parquet("src", [tmp_path / "a.parquet", tmp_path / "b.parquet"], as_table=True)
    engine.write_parquet("SELECT id, name FROM src", tmp_path / "out")
    back = duck.sql(f"SELECT id, name FROM read_parquet('{tmp_path}/out/*.parquet')").fetchall()
    expected = [(1, "Zoë"), (1, "Zoë"), (2, None), (3, "Åsa")]
    assert sorted(back, key=str) == sorted(expected, key=str)
    engine.execute(f"COPY (SELECT id FROM src WHERE id > 1) TO '{tmp_path}/copy' (FORMAT parquet)")
    assert duck.sql(
        f"SELECT sum(id) FROM read_parquet('{tmp_path}/copy/*.parquet')"
    ).fetchall() == [(5,)]
    # read_parquet in SQL: one path, a list of paths, a folder written by Spark
    one = f"SELECT count(*) AS n FROM read_parquet('{tmp_path}/a.parquet')"
    both = (
        f"SELECT count(*) AS n FROM read_parquet(['{tmp_path}/a.parquet', '{tmp_path}/b.parquet'])"
    )
    assert engine.query_one(one)["n"] == 3
    assert engine.query_one(both)["n"] == 4
    engine.read_parquet("folder", tmp_path / "out")
    assert engine.query_one("SELECT count(*) AS n FROM folder")["n"] == 4
    # DuckDB (this DuckDB) reads Spark's folder as it is; relative paths mean the same
    # on both engines (the JVM started elsewhere)
    monkeypatch.chdir(tmp_path)
    assert duck.sql("SELECT count(*) FROM read_parquet('out')").fetchall() == [(4,)]
    engine.write_parquet("SELECT 7 AS x", "rel")
    assert engine.query_one("SELECT x FROM read_parquet('rel')") == {"x": 7}
    assert duck.sql("SELECT x FROM read_parquet('rel/*.parquet')").fetchall() == [(7,)]


def test_register_arrow_from_arrow_polars_and_empty(engine: SparkEngine) -> None:
    import polars as pl

    engine.register_arrow("p", pl.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    assert engine.query("SELECT k, v FROM p ORDER BY k").to_pylist() == [
        {"k": "a", "v": 1},
        {"k": "b", "v": 2},
    ]
    engine.register_arrow("e", pa.table({"a": pa.array([], pa.int64())}))
    assert engine.query_one("SELECT count(*) AS n FROM e") == {"n": 0}


def test_settings(engine: SparkEngine) -> None:
    s = engine.settings()
    assert s["master"] == "local[2]"
    assert s["shuffle_partitions"] == "4"
    assert s["default_parallelism"] == 2
    assert s["spark_version"].startswith("4.") and s["app_id"]


def test_errors_carry_the_duckdb_and_the_spark_sql(engine: SparkEngine) -> None:
    with pytest.raises(SQLError) as err:
        engine.query("SELECT no_such_column::VARCHAR FROM (SELECT 1 AS a)", step="probe")
    assert err.value.step == "probe"
    assert err.value.duckdb_sql.startswith("SELECT no_such_column::VARCHAR")
    assert "CAST(no_such_column AS STRING)" in err.value.spark_sql
    assert "-- Spark SQL --" in str(err.value)
    with pytest.raises(UnsupportedOnEngine, match="update: UPDATE"):
        engine.execute("UPDATE t SET a = 1", step="update")


# ----------------------------------------------------------------------------- graph
def _labels(con: object, pairs: list[tuple[int, int]], *, duck_con: bool) -> list[tuple]:
    if duck_con:
        con.register("e", _edges(pairs))
    else:
        con.register_arrow("e", _edges(pairs))
    res = connected_components(con, "SELECT a, b FROM e", _temp)
    return _rows(con, f'SELECT node, label FROM "{res.table}"')


def _shape(shape: str, n: int, seed: int = 0) -> list[tuple[int, int]]:
    ids = [BASE + 7919 * i for i in range(n)]
    if shape == "chain":
        return list(itertools.pairwise(ids))
    if shape == "random_chain":
        random.Random(seed).shuffle(ids)
        return list(itertools.pairwise(ids))
    if shape == "star":
        return [(ids[-1], x) for x in ids[:-1]]
    if shape == "zigzag":  # a path through 1, 0, 3, 2, ...: local minima alternate
        return list(itertools.pairwise(ids[i ^ 1] for i in range(n)))
    rng = random.Random(seed)  # random graph with self-loops and duplicates
    return [(rng.choice(ids), rng.choice(ids)) for _ in range(n)]


@pytest.mark.parametrize("shape", ["chain", "random_chain", "star", "zigzag", "random"])
def test_connected_components_same_labels_as_duckdb(
    engine: SparkEngine, duck: duckdb.DuckDBPyConnection, shape: str
) -> None:
    pairs = _shape(shape, 24, seed=5)
    got = _labels(engine, pairs, duck_con=False)
    assert got == _labels(duck, pairs, duck_con=True)
    assert got


def test_capped_components_same_as_duckdb(
    engine: SparkEngine, duck: duckdb.DuckDBPyConnection
) -> None:
    # Two strong triangles (0.9) joined by a weak edge (0.5), and a chain of 5 at 0.7/0.8:
    # with a cap of 3 both components are too large, the threshold rises to the median
    # of their edges (0.9), each triangle stands alone and the chain falls apart.
    tri = [
        (1, 2, 0.9),
        (2, 3, 0.9),
        (1, 3, 0.9),
        (4, 5, 0.9),
        (5, 6, 0.9),
        (4, 6, 0.9),
        (3, 4, 0.5),
    ]
    chain = [(10, 11, 0.7), (11, 12, 0.8), (12, 13, 0.7), (13, 14, 0.8)]
    rows = [(BASE + a, BASE + b, s) for a, b, s in tri + chain]
    scored = pa.table(
        {
            "a": pa.array([r[0] for r in rows], pa.int64()),
            "b": pa.array([r[1] for r in rows], pa.int64()),
            "score": pa.array([r[2] for r in rows], pa.float64()),
        }
    )
    _load(engine, duck, "scored", scored)
    outs = []
    for con in (engine, duck):
        res = capped_components(con, "scored", _temp, threshold=0.4, max_size=3)
        outs.append((_rows(con, f'SELECT node, label FROM "{res.table}"'), res.thresholds))
    assert outs[0] == outs[1]
    labels, thresholds = outs[0]
    assert thresholds == [0.4, 0.9]
    assert sorted({label - BASE for _, label in labels}) == [1, 4]


# ----------------------------------------------------------------------------- matchers' SQL
NAMES = [
    "Crème Brûlée",
    "Ångström",
    "Łódź",
    "Straße",
    "Ærøskøbing",
    "Nguyễn Thị",
    "İstanbul",
    "José",
    None,
]


def test_strip_accents_udf_equals_duckdb(
    engine: SparkEngine, duck: duckdb.DuckDBPyConnection
) -> None:
    _load(engine, duck, "n", pa.table({"s": pa.array(NAMES, pa.string())}))
    got = _same(engine, duck, "SELECT s, strip_accents(s) AS t FROM n")
    assert ("José", "Jose") in got


def test_normalisers_same_as_duckdb(engine: SparkEngine, duck: duckdb.DuckDBPyConnection) -> None:
    raw = pa.table(
        {
            "name": [" O'Brien-Smith ", "Zoë  de la Cruz", "!!", None, "Nguyễn Thị"],
            "email": ["A.B+x@GMail.com ", "noemail@x.org", "bad@", "x@y.co", None],
            "phone": [
                "+44 20 7946 0958",
                "(415) 555-0100",
                "1-415-555-0100",
                "0000000",
                "011 33 1 23",
            ],
            "postcode": ["sw1a 1aa", " 94103 ", "", None, "EC1A  1BB"],
        }
    )
    _load(engine, duck, "raw", raw)
    exprs = [
        name_sql("name"),
        email_sql("email", canonical=True),
        email_sql("email"),
        phone_sql("phone", region="US"),
        phone_sql("phone", region="GB"),
        postcode_sql("postcode"),
        identifier_sql("email"),
        junk_sql("email", email_sql("email")),
        junk_sql("phone", phone_sql("phone")),
        "regexp_replace(name, '[aeiou]', '_')",  # DuckDB: first match only
    ]
    cols = ", ".join(f"{e} AS c{i}" for i, e in enumerate(exprs))
    _same(engine, duck, f"SELECT name, {cols} FROM raw")


def test_cascade_rule_sql_same_as_duckdb(
    engine: SparkEngine, duck: duckdb.DuckDBPyConnection
) -> None:
    rng = random.Random(7)
    n = 60
    keys = pa.table(
        {
            "record_id": pa.array([BASE + i for i in range(n)], pa.int64()),
            "ts": pa.array(
                [rng.randrange(0, 200 * 86400) * 10**6 for _ in range(n)], pa.timestamp("us")
            ),
            "phone": [rng.choice(["p1", "p2", "p3", None]) for _ in range(n)],
            "email": [rng.choice(["e1", "e2", None]) for _ in range(n)],
        }
    )
    _load(engine, duck, "keys", keys)
    windowed = Rule(columns=("phone",), group_cap=30, window=45.0, shareable=True)
    plain = Rule(columns=("email",), group_cap=None)
    _same(engine, duck, edges_sql("keys", windowed))
    _same(engine, duck, edges_sql("keys", plain))
    _same(engine, duck, single_rule_clusters_sql('"keys"', '"keys"', plain))
    for con in (engine, duck):
        execute(
            con,
            f'CREATE OR REPLACE TEMP TABLE "ok" AS SELECT * FROM ({edges_sql("keys", plain)}) WHERE a % 3 <> 0',
        )
    _same(
        engine,
        duck,
        f"SELECT count(DISTINCT b) AS n FROM ({edges_sql('keys', plain)}) "
        "WHERE (a, b) NOT IN (SELECT (a, b) FROM ok) AND a <> b",
    )
