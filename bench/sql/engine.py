"""The one place where the harness talks to its SQL engine (DuckDB today).

Every statement the harness, the dataset loaders and the metrics run goes through the
functions here, so that a second engine (e.g. Spark, which Splink also runs on) means a
second implementation of this module, not a rewrite of the harness. SQL text elsewhere
sticks to what both engines accept (``GROUPING SETS``, window functions, ``CASE``,
no DuckDB-only macros).

Failed statements are re-raised as :class:`SQLError` carrying the SQL and a logical
name for what was being done.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.sql.interface import Engine

#: What the functions below run on: a DuckDB connection or any :class:`Engine`.
Target = duckdb.DuckDBPyConnection | Engine

__all__ = [
    "SQLError",
    "confine",
    "connect",
    "exact_sum",
    "execute",
    "literal",
    "materialise",
    "query",
    "query_one",
    "quote_ident",
    "register_arrow",
    "register_parquet",
    "write_parquet",
]

log = logging.getLogger(__name__)


class SQLError(RuntimeError):
    """A statement failed; carries the logical step and the SQL text."""

    def __init__(self, step: str, sql: str, cause: Exception) -> None:
        self.step = step
        self.sql = sql
        super().__init__(f"{step}: {cause}\n-- SQL --\n{sql.strip()}")


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str | Path) -> str:
    """Quote a string (e.g. a file path) as a SQL literal."""
    return "'" + str(value).replace("'", "''") + "'"


def exact_sum(expr: str, over: str | None = None) -> str:
    """A ``sum`` of a DOUBLE expression that gives the same bits on every run.

    DuckDB adds a DOUBLE sum's terms in whatever order its threads meet them, so the last
    bits of the result vary from run to run; where sums are compared (ranking candidates
    by strength, scores near a threshold) that noise decides ties differently each run.
    Each term is rounded to 18 decimals (``DECIMAL(38, 18)``) and summed exactly, so the
    result does not depend on the order. Terms and sums must stay below ``1e20`` in size.

    ``over`` makes it a window sum (``"PARTITION BY record_id"``).
    """
    window = f" OVER ({over})" if over else ""
    return f"CAST(sum(CAST({expr} AS DECIMAL(38, 18))){window} AS DOUBLE)"


def connect(
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    database: str | Path = ":memory:",
    temp_directory: str | Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a connection with explicit threads and memory limit.

    Parameters
    ----------
    threads
        Worker threads; default: all cores.
    memory_limit
        DuckDB memory limit such as ``"4GB"``; default: DuckDB's own (80% of RAM).
    database
        File path or ``":memory:"``.
    temp_directory
        Where DuckDB spills when over its memory limit.
    """
    con = duckdb.connect(str(database))
    con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {literal(memory_limit)}")
    if temp_directory:
        con.execute(f"SET temp_directory = {literal(temp_directory)}")
    # Insertion order is not needed by the harness and costs memory on big inputs.
    con.execute("SET preserve_insertion_order = false")
    return con


def confine(
    con: duckdb.DuckDBPyConnection,
    *,
    allowed_directories: Sequence[str | Path],
    temp_directory: str | Path,
) -> None:
    """Confine ``con`` to files under ``allowed_directories``, for good.

    Spilling goes to ``temp_directory``; every other file, glob, attach, copy or
    extension outside the allowed folders fails with a permission error, and the
    configuration is locked so the connection cannot undo it. The order matters:
    DuckDB refuses to change the folders once external access is off.
    """
    folders = ", ".join(literal(f"{Path(d).resolve()}{os.sep}") for d in allowed_directories)
    con.execute(f"SET temp_directory = {literal(temp_directory)}")
    con.execute(f"SET allowed_directories = [{folders}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _duckdb(con: Target) -> duckdb.DuckDBPyConnection | None:
    """The DuckDB connection behind ``con``, or ``None`` for another engine."""
    if isinstance(con, Engine):
        return getattr(con, "con", None) if con.kind == "duckdb" else None
    return con


def _no_params(con: Engine, params: Sequence[Any] | None, step: str) -> None:
    if params:
        msg = f"{step}: statement parameters are DuckDB-only (engine {con.kind}); inline literals"
        raise TypeError(msg)


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None, step: str):
    try:
        return con.sql(sql, params=params) if params else con.sql(sql)
    except duckdb.Error as exc:
        raise SQLError(step, sql, exc) from exc


def execute(
    con: Target,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    step: str = "statement",
) -> None:
    """Run a statement for its effect (DDL, COPY...)."""
    raw = _duckdb(con)
    if raw is None:
        _no_params(con, params, step)
        con.execute(sql, step=step)
        return
    rel = _run(raw, sql, params, step)
    if rel is not None:  # a query used as a statement: read it fully, free the connection
        rel.fetchall()


def query(
    con: Target,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    step: str = "query",
) -> pa.Table:
    """Run a query and return all rows as an Arrow table (fully read)."""
    raw = _duckdb(con)
    if raw is None:
        _no_params(con, params, step)
        return con.query(sql, step=step)
    rel = _run(raw, sql, params, step)
    try:
        return rel.to_arrow_table()
    except duckdb.Error as exc:
        raise SQLError(step, sql, exc) from exc


def query_one(
    con: Target,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    step: str = "query",
) -> dict[str, Any]:
    """Run a query returning one row; return it as a dict (column -> Python value)."""
    rows = query(con, sql, params, step=step).to_pylist()
    if len(rows) != 1:
        msg = f"{step}: expected one row, got {len(rows)}"
        raise SQLError(step, sql, RuntimeError(msg))
    return rows[0]


def register_parquet(
    con: Target,
    view: str,
    paths: str | Path | Iterable[str | Path],
    *,
    as_table: bool = False,
) -> None:
    """Expose Parquet file(s) under ``view``; ``as_table`` loads them into memory."""
    if _duckdb(con) is None:
        con.read_parquet(view, paths, as_table=as_table)
        return
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    src = "read_parquet([" + ", ".join(literal(p) for p in files) + "])"
    kind = "TABLE" if as_table else "VIEW"
    execute(
        con,
        f"CREATE OR REPLACE {kind} {quote_ident(view)} AS SELECT * FROM {src}",
        step=f"load {view}",
    )


def register_arrow(con: Target, view: str, data: Any) -> None:
    """Expose an in-memory Arrow table / polars / pandas frame under ``view``."""
    raw = _duckdb(con)
    if raw is None:
        con.register_arrow(view, data)
    else:
        raw.register(view, data)


def materialise(con: Target, output: Any, *, step: str) -> pa.Table:
    """Turn a matcher output into an Arrow table, running any lazy relation now.

    Accepts a DuckDB relation, an Arrow table or record batch reader, a polars or pandas
    frame, or the name of a table/view in ``con``.
    """
    if isinstance(output, pa.Table):
        return output
    if isinstance(output, str):
        return query(con, f"SELECT * FROM {quote_ident(output)}", step=step)
    if isinstance(output, Engine):
        msg = f"{step}: an engine is not a table"
        raise TypeError(msg)
    if isinstance(output, duckdb.DuckDBPyRelation):
        try:
            return output.to_arrow_table()
        except duckdb.Error as exc:
            raise SQLError(step, output.sql_query(), exc) from exc
    if isinstance(output, pa.RecordBatchReader):
        return output.read_all()
    to_arrow = getattr(output, "to_arrow", None) or getattr(output, "toArrow", None)
    if callable(to_arrow):  # polars DataFrame, Spark DataFrame
        return to_arrow()
    try:
        return pa.Table.from_pandas(output, preserve_index=False)
    except Exception as exc:
        msg = f"{step}: cannot read a {type(output).__name__} as a table"
        raise TypeError(msg) from exc


def write_parquet(
    con: Target,
    sql: str,
    path: str | Path,
    *,
    step: str = "write parquet",
) -> None:
    """Write the result of ``sql`` to Parquet (one file on DuckDB; zstd)."""
    if _duckdb(con) is None:
        con.write_parquet(sql, path, step=step)
        return
    execute(
        con,
        f"COPY ({sql}) TO {literal(path)} (FORMAT parquet, COMPRESSION zstd)",
        step=step,
    )


def table_columns(con: Target, name: str) -> dict[str, str]:
    """Column name -> SQL type of a table or view."""
    if _duckdb(con) is None:
        return con.columns(name)
    rows = query(con, f"DESCRIBE {quote_ident(name)}", step=f"describe {name}").to_pylist()
    return {r["column_name"]: r["column_type"] for r in rows}


def settings(con: Target, names: Mapping[str, str] | None = None) -> dict:
    """Current values of engine settings worth recording in a run record."""
    if _duckdb(con) is None:
        return con.settings()
    wanted = list(names or ("threads", "memory_limit"))
    rows = query(
        con,
        "SELECT name, value FROM duckdb_settings() WHERE name IN ("
        + ", ".join(literal(n) for n in wanted)
        + ")",
        step="read settings",
    ).to_pylist()
    return {r["name"]: r["value"] for r in rows}
