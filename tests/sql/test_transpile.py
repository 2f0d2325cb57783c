"""DuckDB -> Spark plans (``bench.sql.transpile``): one test per rewrite, no Spark needed."""

from __future__ import annotations

import pytest

from bench.sql.interface import UnsupportedOnEngine
from bench.sql.transpile import PARQUET_VIEW_PREFIX, Statement, plan, plan_query, to_spark


def one(sql: str) -> Statement:
    statements = plan(sql)
    assert len(statements) == 1
    return statements[0]


# ----------------------------------------------------------------------------- statements
def test_create_temp_table_as_is_a_create_table_plan_not_a_view() -> None:
    st = one('CREATE OR REPLACE TEMP TABLE "x" AS SELECT DISTINCT least(a, b) AS a FROM e')
    assert (st.kind, st.name, st.replace) == ("create_table", "x", True)
    assert st.select_sql == "SELECT DISTINCT LEAST(a, b) AS a FROM e"


def test_create_table_without_replace_or_with_if_not_exists() -> None:
    assert one("CREATE TABLE x AS SELECT 1 AS a").replace is False
    assert one("CREATE TABLE IF NOT EXISTS x AS SELECT 1 AS a").if_exists is True


def test_create_view_plan() -> None:
    st = one("CREATE OR REPLACE TEMP VIEW v AS SELECT a FROM t")
    assert (st.kind, st.name, st.select_sql) == ("create_view", "v", "SELECT a FROM t")


def test_create_empty_table_carries_a_spark_schema() -> None:
    st = one('CREATE OR REPLACE TEMP TABLE "out" (node BIGINT, label BIGINT, raw VARCHAR)')
    assert st.kind == "create_empty"
    assert st.schema == "`node` BIGINT, `label` BIGINT, `raw` STRING"


def test_insert_select_keeps_its_cte_and_column_list() -> None:
    st = one("INSERT INTO o WITH s AS MATERIALIZED (SELECT 1 AS a) SELECT a, a FROM s")
    assert (st.kind, st.name) == ("insert", "o")
    assert st.select_sql == "WITH s AS (SELECT 1 AS a) SELECT a, a FROM s"
    listed = one("INSERT INTO x (a, b) VALUES (1, 2)")
    assert (listed.columns, listed.select_sql) == (("a", "b"), "VALUES (1, 2)")
    assert one("INSERT INTO x BY NAME SELECT 1 AS a").by_name is True


def test_delete_becomes_a_rebuild_keeping_the_rows_not_deleted() -> None:
    st = one("DELETE FROM w WHERE score < 0.5")
    assert (st.kind, st.name) == ("delete", "w")
    assert st.select_sql == "SELECT * FROM `w` WHERE NOT COALESCE((score < 0.5), FALSE)"


def test_drop_and_rename_plans() -> None:
    drops = plan('DROP TABLE IF EXISTS "x"; DROP VIEW v')
    assert [(s.kind, s.name, s.if_exists) for s in drops] == [
        ("drop", "x", True),
        ("drop", "v", False),
    ]
    st = one('ALTER TABLE "x" RENAME TO "y"')
    assert (st.kind, st.name, st.new_name) == ("rename", "x", "y")


def test_copy_to_parquet_is_a_copy_plan() -> None:
    st = one("COPY (SELECT 1 AS a) TO 'out.parquet' (FORMAT parquet, COMPRESSION zstd)")
    assert (st.kind, st.path, st.select_sql) == ("copy", "out.parquet", "SELECT 1 AS a")
    assert st.options == {"format": "parquet", "compression": "zstd"}
    part = one("COPY t TO 'd' (FORMAT 'parquet', PARTITION_BY (a, b))")
    assert part.select_sql == "SELECT * FROM t"
    assert part.options["partition_by"] == "a,b"


def test_statements_keep_their_duckdb_source() -> None:
    assert one("SELECT 1 AS a").source == "SELECT 1 AS a"


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("UPDATE t SET a = 1", "UPDATE"),
        ("SET threads = 2", "SET"),
        ("COPY t TO 'x.csv' (FORMAT csv)", "FORMAT csv"),
        ("COPY t FROM 'x.parquet'", "COPY ... FROM"),
        ("SELECT * FROM read_parquet('a.parquet', hive_partitioning = true)", "options"),
        ("SELECT list(x ORDER BY y) FROM t", "ordered list"),
        ("SELECT * FROM a ASOF JOIN b ON a.k = b.k AND b.t <= a.t", "ASOF JOIN"),
        ("SELECT regexp_replace(x, 'a', 'b', 'gs') FROM t", "flags"),
        ("SELECT regexp_replace(x, '[[:alpha:]]', '', 'g') FROM t", "POSIX"),
        ("SELECT epoch(a - b) FROM t", "interval"),
        ("SELECT epoch_ms(ts) FROM t", "ambiguous"),
        ("SELECT quantile_disc(x, [0.25, 0.5]) FROM t", "list of quantiles"),
        ("CREATE TABLE s.x AS SELECT 1", "qualified"),
        ("ALTER TABLE x ADD COLUMN c INT", "RENAME"),
        ("SELECT FROM WHERE", "parse"),
    ],
)
def test_untranslatable_sql_raises_naming_the_construct(sql: str, construct: str) -> None:
    with pytest.raises(UnsupportedOnEngine, match=construct):
        plan(sql)


def test_plan_query_and_to_spark_accept_only_one_query() -> None:
    assert to_spark("SELECT a::BIGINT AS a FROM t") == "SELECT CAST(a AS BIGINT) AS a FROM t"
    with pytest.raises(UnsupportedOnEngine, match="expected one query"):
        plan_query("DROP TABLE t")
    with pytest.raises(UnsupportedOnEngine, match="expected one query"):
        plan_query("SELECT 1; SELECT 2")


# ----------------------------------------------------------------------------- rewrites
def test_strip_materialized() -> None:
    sql = "WITH k AS MATERIALIZED (SELECT * FROM t) SELECT * FROM k"
    assert to_spark(sql) == "WITH k AS (SELECT * FROM t) SELECT * FROM k"


def test_rewrite_row_in_subquery_to_not_exists() -> None:
    sql = (
        "SELECT count(DISTINCT g) AS n FROM e "
        "WHERE (ca, cb) NOT IN (SELECT (a, b) FROM ok) AND ca <> cb"
    )
    assert to_spark(sql) == (
        "SELECT COUNT(DISTINCT g) AS n FROM e WHERE NOT EXISTS(SELECT 1 FROM "
        "(SELECT a AS __c0, b AS __c1 FROM ok) AS __in1 "
        "WHERE __in1.__c0 = ca AND __in1.__c1 = cb) AND ca <> cb"
    )


def test_rewrite_row_in_subquery_with_plain_columns_and_unions() -> None:
    sql = "SELECT x FROM t WHERE (x, y) IN (SELECT a, b FROM u UNION SELECT c, d FROM v)"
    assert to_spark(sql) == (
        "SELECT x FROM t WHERE EXISTS(SELECT 1 FROM (SELECT a AS __c0, b AS __c1 FROM u "
        "UNION SELECT c AS __c0, d AS __c1 FROM v) AS __in1 "
        "WHERE __in1.__c0 = x AND __in1.__c1 = y)"
    )
    with pytest.raises(UnsupportedOnEngine, match="3 columns"):
        to_spark("SELECT 1 FROM t WHERE (x, y) IN (SELECT a, b, c FROM u)")


def test_single_column_in_subquery_is_left_to_spark() -> None:
    sql = "SELECT node FROM s WHERE node NOT IN (SELECT record_id FROM p)"
    assert to_spark(sql) == "SELECT node FROM s WHERE NOT node IN (SELECT record_id FROM p)"


def test_rewrite_read_parquet_single_path() -> None:
    assert to_spark("SELECT * FROM read_parquet('d/a.parquet') r") == (
        "SELECT * FROM parquet.`d/a.parquet` AS r"
    )


def test_rewrite_read_parquet_list_becomes_a_view_the_engine_registers() -> None:
    st = plan_query("SELECT * FROM read_parquet(['a.parquet', 'b.parquet'])")
    ((view, paths),) = st.parquet_sources
    assert view.startswith(PARQUET_VIEW_PREFIX)
    assert paths == ("a.parquet", "b.parquet")
    assert st.select_sql == f"SELECT * FROM `{view}`"
    with pytest.raises(UnsupportedOnEngine, match="plan"):
        to_spark("SELECT * FROM read_parquet(['a.parquet', 'b.parquet'])")


def test_read_parquet_and_copy_paths_can_be_mapped() -> None:
    st = plan_query("SELECT * FROM read_parquet('a.parquet')", path=lambda p: "/in/" + p)
    assert st.select_sql == "SELECT * FROM parquet.`/in/a.parquet`"
    (copy,) = plan("COPY (SELECT 1 AS a) TO 'o.parquet'", path=lambda p: "/out/" + p)
    assert (copy.path, copy.options) == ("/out/o.parquet", {"format": "parquet"})


def test_keep_strip_accents_as_the_udf_call() -> None:
    assert to_spark("SELECT strip_accents(lower(x)) FROM t") == (
        "SELECT STRIP_ACCENTS(LOWER(x)) FROM t"
    )
    with pytest.raises(UnsupportedOnEngine, match="one argument"):
        to_spark("SELECT strip_accents(x, y) FROM t")


def test_rewrite_regexp_replace_global_flag() -> None:
    # Spark replaces every match: the 'g' flag is simply dropped.
    assert to_spark("SELECT regexp_replace(x, '[^0-9]', '', 'g') FROM t") == (
        "SELECT REGEXP_REPLACE(x, '[^0-9]', '') FROM t"
    )


def test_rewrite_regexp_replace_first_match_only_without_g() -> None:
    # DuckDB replaces the first match only; the prefix before it is kept as group 1.
    assert to_spark("SELECT regexp_replace(x, 'a+', '-') FROM t") == (
        "SELECT REGEXP_REPLACE(x, '^([\\\\s\\\\S]*?)(a+)', '$1-') FROM t"
    )


def test_rewrite_regexp_replace_groups_case_and_dollars() -> None:
    swapped = to_spark("SELECT regexp_replace(x, '(a)(b)', '\\2\\1', 'g') FROM t")
    assert swapped == "SELECT REGEXP_REPLACE(x, '(a)(b)', '$2$1') FROM t"
    assert to_spark("SELECT regexp_replace(x, 'A', '$', 'gi') FROM t") == (
        "SELECT REGEXP_REPLACE(x, '(?i)A', '\\\\$') FROM t"
    )


def test_nested_calls_are_all_rewritten() -> None:
    sql = "SELECT regexp_replace(regexp_replace(x, 'a', 'b'), 'c', 'd') AS r, hash(hash(x)) AS h"
    assert to_spark(sql) == (
        "SELECT REGEXP_REPLACE(REGEXP_REPLACE(x, '^([\\\\s\\\\S]*?)(a)', '$1b'), "
        "'^([\\\\s\\\\S]*?)(c)', '$1d') AS r, "
        "(XXHASH64((XXHASH64(x) & 9223372036854775807)) & 9223372036854775807) AS h"
    )


def test_regexp_patterns_keep_their_backslashes() -> None:
    # matchers.normalise.name_sql: Unicode classes, written with single backslashes.
    sql = "SELECT regexp_replace(x, '[^\\p{L}\\p{N}\\s]', '', 'g') FROM t"
    assert to_spark(sql) == "SELECT REGEXP_REPLACE(x, '[^\\\\p{L}\\\\p{N}\\\\s]', '') FROM t"


def test_rewrite_quantiles_to_within_group() -> None:
    sql = (
        "SELECT quantile_disc(score, 0.5) AS med, quantile(score, 0.25) AS q, "
        "quantile_cont(score, 0.5) AS c, min(score) FILTER (WHERE score > 0.5) AS nxt FROM w"
    )
    assert to_spark(sql) == (
        "SELECT PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY score NULLS LAST) AS med, "
        "PERCENTILE_DISC(0.25) WITHIN GROUP (ORDER BY score NULLS LAST) AS q, "
        "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY score NULLS LAST) AS c, "
        "MIN(score) FILTER(WHERE score > 0.5) AS nxt FROM w"
    )


def test_within_group_is_not_turned_into_an_approximation() -> None:
    sql = "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) AS m FROM t"
    assert (
        to_spark(sql)
        == "SELECT PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY x NULLS LAST) AS m FROM t"
    )


def test_rewrite_epoch_keeps_fractions() -> None:
    assert to_spark("SELECT epoch(ts) AS s FROM t") == (
        "SELECT (CAST(UNIX_MICROS(CAST(ts AS TIMESTAMP)) AS DOUBLE) / 1000000) AS s FROM t"
    )
    assert to_spark("SELECT epoch_ms(1000) AS t") == "SELECT TIMESTAMP_MILLIS(1000) AS t"


def test_rewrite_hash_to_a_non_negative_64_bit_hash() -> None:
    assert to_spark("SELECT hash(a, b) AS h FROM t") == (
        "SELECT (XXHASH64(a, b) & 9223372036854775807) AS h FROM t"
    )


def test_rewrite_strlen_counts_bytes() -> None:
    assert to_spark("SELECT strlen(lower(x)) = length(x) AS ascii FROM t") == (
        "SELECT OCTET_LENGTH(ENCODE(LOWER(x), 'utf-8')) = LENGTH(x) AS ascii FROM t"
    )


def test_rewrite_unsigned_types() -> None:
    sql = "SELECT CAST(x AS HUGEINT) AS h, x::UBIGINT AS u, x::UINTEGER AS i FROM t"
    assert to_spark(sql) == (
        "SELECT CAST(x AS DECIMAL(38, 0)) AS h, CAST(x AS DECIMAL(20, 0)) AS u, "
        "CAST(x AS BIGINT) AS i FROM t"
    )
    assert one("CREATE TABLE c (h HUGEINT)").schema == "`h` DECIMAL(38, 0)"


def test_qualify_stays_native_without_leaking_a_column() -> None:
    sql = "SELECT * FROM t QUALIFY row_number() OVER (PARTITION BY b ORDER BY c) = 1"
    assert to_spark(sql) == (
        "SELECT * FROM t QUALIFY ROW_NUMBER() OVER (PARTITION BY b ORDER BY c NULLS LAST) = 1"
    )


@pytest.mark.parametrize(
    ("duckdb_sql", "spark_sql"),
    [
        (
            "SELECT count(*) FILTER (WHERE moved) AS n FROM p",
            "SELECT COUNT(*) FILTER(WHERE moved) AS n FROM p",
        ),
        (
            "SELECT a::BIGINT, b::VARCHAR FROM t",
            "SELECT CAST(a AS BIGINT), CAST(b AS STRING) FROM t",
        ),
        ("SELECT CAST(ts AS TIMESTAMP) FROM t", "SELECT CAST(ts AS TIMESTAMP_NTZ) FROM t"),
        ("SELECT list(x) FROM t", "SELECT COLLECT_LIST(x) FROM t"),
        ("SELECT string_agg(x) FROM t", "SELECT LISTAGG(x, ',') FROM t"),
        (
            "SELECT starts_with(x, '+'), length(x) FROM t",
            "SELECT STARTSWITH(x, '+'), LENGTH(x) FROM t",
        ),
        (
            "SELECT split_part(e, '@', 1), right(p, 7) FROM t",
            "SELECT SPLIT_PART(e, '@', 1), RIGHT(p, 7) FROM t",
        ),
        ("SELECT TRY_CAST(d AS DATE) FROM t", "SELECT TRY_CAST(d AS DATE) FROM t"),
        ("SELECT a FROM t ORDER BY a", "SELECT a FROM t ORDER BY a NULLS LAST"),
        ("SELECT c, max(x) FROM t GROUP BY ALL", "SELECT c, MAX(x) FROM t GROUP BY ALL"),
        ("SELECT x[1] FROM t", "SELECT x[0] FROM t"),
        (
            "SELECT a FROM t WHERE ts - lag(ts) OVER (ORDER BY ts) > INTERVAL 86400 SECOND",
            "SELECT a FROM t WHERE ts - LAG(ts) OVER (ORDER BY ts NULLS LAST) > INTERVAL '86400' SECOND",
        ),
    ],
)
def test_what_sqlglot_already_translates_right(duckdb_sql: str, spark_sql: str) -> None:
    assert to_spark(duckdb_sql) == spark_sql
