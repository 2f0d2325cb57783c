"""The default engine: an embedded DuckDB connection behind :class:`~bench.sql.interface.Engine`.

A thin wrapper: every method is one call of :mod:`bench.sql.engine` on :attr:`con`, so the
DuckDB path costs what it cost before the interface existed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from bench.sql import engine as sql
from bench.sql.interface import Engine

__all__ = ["DuckDBEngine"]

q = sql.quote_ident


class DuckDBEngine(Engine):
    """An :class:`Engine` over a DuckDB connection (``con`` stays available to callers)."""

    kind: ClassVar[str] = "duckdb"
    dialect: ClassVar[str] = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql_text: str, *, step: str = "statement") -> None:
        """Run a statement for its effect."""
        sql.execute(self.con, sql_text, step=step)

    def query(self, sql_text: str, *, step: str = "query") -> pa.Table:
        """Run a query; return all rows as Arrow."""
        return sql.query(self.con, sql_text, step=step)

    def create_table(self, name: str, sql_text: str, *, step: str = "create table") -> None:
        """``CREATE OR REPLACE TEMP TABLE name AS sql``."""
        sql.execute(self.con, f"CREATE OR REPLACE TEMP TABLE {q(name)} AS {sql_text}", step=step)

    def create_view(self, name: str, sql_text: str, *, step: str = "create view") -> None:
        """``CREATE OR REPLACE TEMP VIEW name AS sql``."""
        sql.execute(self.con, f"CREATE OR REPLACE TEMP VIEW {q(name)} AS {sql_text}", step=step)

    def drop(self, *names: str) -> None:
        """Drop tables or views that exist."""
        for name in names:
            kind = self._kind(name)
            if kind:
                sql.execute(self.con, f"DROP {kind} {q(name)}", step=f"drop {name}")

    def _kind(self, name: str) -> str | None:
        row = sql.query(
            self.con,
            "SELECT 'TABLE' AS k FROM duckdb_tables() WHERE table_name = $1 "
            "UNION ALL SELECT 'VIEW' FROM duckdb_views() WHERE view_name = $1 LIMIT 1",
            [name],
            step=f"find {name}",
        ).to_pylist()
        return row[0]["k"] if row else None

    def exists(self, name: str) -> bool:
        """Whether a table or view ``name`` exists."""
        return self._kind(name) is not None

    def columns(self, name: str) -> dict[str, str]:
        """Column name -> DuckDB type."""
        return sql.table_columns(self.con, name)

    def read_parquet(
        self, name: str, paths: str | Path | Iterable[str | Path], *, as_table: bool = False
    ) -> None:
        """Expose Parquet file(s) as ``name``."""
        sql.register_parquet(self.con, name, paths, as_table=as_table)

    def write_parquet(
        self, sql_text: str, path: str | Path, *, step: str = "write parquet"
    ) -> None:
        """Write the result of ``sql`` to one Parquet file."""
        sql.write_parquet(self.con, sql_text, path, step=step)

    def register_arrow(self, name: str, data: Any) -> None:
        """Expose an in-memory frame as view ``name``."""
        sql.register_arrow(self.con, name, data)

    def settings(self) -> dict[str, Any]:
        """Threads and memory limit of the connection."""
        return sql.settings(self.con)

    def close(self) -> None:
        """Close the connection."""
        self.con.close()
