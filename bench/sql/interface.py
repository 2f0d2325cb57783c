"""The engine interface: what the harness and the matchers need from a SQL engine.

idbench runs on two engines. :class:`~bench.sql.duckdb_engine.DuckDBEngine` (the default)
wraps an embedded DuckDB connection; :class:`~bench.sql.spark.SparkEngine` runs the same
statements on Apache Spark (a ``local[N]`` session, a ``spark://`` cluster or a Spark
Connect ``sc://`` remote), translating idbench's DuckDB SQL as it goes. SQL handed to
an engine is always written in DuckDB's dialect; an engine that speaks another dialect
translates it (``dialect`` names the target, for :mod:`sqlglot`).

The free functions of :mod:`bench.sql.engine` (``execute``, ``query``, ``query_one``,
``table_columns``, ``materialise``...) accept an engine as well as a raw DuckDB
connection, so code written against them runs on both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

__all__ = ["Engine", "UnsupportedOnEngine"]


class UnsupportedOnEngine(RuntimeError):
    """A step needs a feature the engine does not have (e.g. a DuckDB connection)."""


class Engine(ABC):
    """A SQL engine holding named tables and views for one run.

    Names are plain identifiers (quoted by the engine); ``sql`` arguments are DuckDB SQL.
    """

    #: Short name recorded in run records and labels (``"duckdb"``, ``"spark"``).
    kind: ClassVar[str]
    #: sqlglot dialect of the engine's native SQL.
    dialect: ClassVar[str]

    @abstractmethod
    def execute(self, sql: str, *, step: str = "statement") -> None:
        """Run a statement for its effect (DDL, ``CREATE ... AS``, ``COPY``...)."""

    @abstractmethod
    def query(self, sql: str, *, step: str = "query") -> pa.Table:
        """Run a query; return all rows as an Arrow table."""

    def query_one(self, sql: str, *, step: str = "query") -> dict[str, Any]:
        """Run a query returning exactly one row; return it as a dict."""
        from bench.sql.engine import query_one

        return query_one(self, sql, step=step)

    @abstractmethod
    def create_table(self, name: str, sql: str, *, step: str = "create table") -> None:
        """Materialise the result of ``sql`` as table ``name`` (replacing it)."""

    @abstractmethod
    def create_view(self, name: str, sql: str, *, step: str = "create view") -> None:
        """Define view ``name`` as ``sql`` (replacing it); evaluated when read."""

    @abstractmethod
    def drop(self, *names: str) -> None:
        """Drop tables or views; names that do not exist are ignored."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether a table or view ``name`` exists."""

    @abstractmethod
    def columns(self, name: str) -> dict[str, str]:
        """Column name -> type name of table or view ``name`` (engine's own type names)."""

    @abstractmethod
    def read_parquet(
        self, name: str, paths: str | Path | Iterable[str | Path], *, as_table: bool = False
    ) -> None:
        """Expose Parquet file(s) as view ``name``; ``as_table`` materialises them."""

    @abstractmethod
    def write_parquet(self, sql: str, path: str | Path, *, step: str = "write parquet") -> None:
        """Write the result of ``sql`` to Parquet at ``path`` (a file, or a folder of parts)."""

    @abstractmethod
    def register_arrow(self, name: str, data: Any) -> None:
        """Expose an in-memory Arrow table (or polars/pandas frame) as view ``name``."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Engine settings worth recording in a run record."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine's resources."""
