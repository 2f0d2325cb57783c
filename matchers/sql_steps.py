"""Named SQL stages for the built-in matchers, and dropping the tables they made.

A pipeline is a list of :class:`SQLStep` values, each the ``SELECT`` that fills one temp
table plus the name of the stage, built by a small function and run in order by
:func:`run_steps`: a failing statement raises an :class:`~bench.api.SQLError` that names
the stage (``"anonymous: candidate cap"``). This is how Splink builds its pipelines (a
queue of SQL statements, each with the name of the table it makes), except that every
stage is materialised. :func:`drop_tables` removes the temp tables once no later stage
reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.api import execute, quote_ident

if TYPE_CHECKING:
    import duckdb

__all__ = ["SQLStep", "drop_tables", "run_steps"]


@dataclass(frozen=True)
class SQLStep:
    """One stage of a pipeline: the ``SELECT`` that fills one temp table.

    Attributes
    ----------
    stage
        What the stage computes; a failing statement's error names it.
    table
        The temp table the stage creates (replacing it), or adds rows to (``append``).
    sql
        The ``SELECT``.
    append
        Insert into the existing ``table`` instead of creating it.
    params
        Values of the ``?`` placeholders in ``sql``.
    """

    stage: str
    table: str
    sql: str
    append: bool = False
    params: Sequence[Any] | None = None

    def statement(self) -> str:
        """The statement that makes (or extends) ``table``."""
        if self.append:
            return f"INSERT INTO {quote_ident(self.table)} {self.sql}"
        return f"CREATE OR REPLACE TEMP TABLE {quote_ident(self.table)} AS {self.sql}"


def run_steps(con: duckdb.DuckDBPyConnection, steps: Sequence[SQLStep], *, matcher: str) -> None:
    """Execute ``steps`` in order, each under the name ``"<matcher>: <stage>"``."""
    for step in steps:
        execute(con, step.statement(), step.params, step=f"{matcher}: {step.stage}")


def drop_tables(con: duckdb.DuckDBPyConnection, *tables: str | None) -> None:
    """Drop the temp tables (if they exist) once nothing reads them; ``None`` is skipped."""
    for table in tables:
        if table is not None:
            execute(con, f"DROP TABLE IF EXISTS {quote_ident(table)}")
