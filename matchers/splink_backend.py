"""Which Splink backend runs a fit: the run's DuckDB connection or the run's Spark session.

Splink runs where the run's SQL runs, so it reads the records (and the profiles of
:mod:`matchers.splink_profiles`) in place, and the harness-side SQL of the adapter can
read Splink's tables (its predictions) by name:

- on DuckDB, ``DuckDBAPI(connection=ctx.con)``: Splink's tables are named
  ``__splink__...`` in the run's connection;
- on Spark, a ``SparkAPI`` on ``ctx.engine.spark`` (:mod:`matchers.splink_spark`):
  Splink's tables are temporary views of the session, its large intermediate tables
  Parquet files under the engine's ``scratch_dir``.

Settings are written in the backend's dialect (:func:`dialect`): the built-in ones are
made for it, and SQL text in user settings (conditions, blocking rules) must be
written in it.
"""

from __future__ import annotations

from splink import DuckDBAPI
from splink.internals.database_api import DatabaseAPI

from bench.api import MatchContext, UnsupportedInput

__all__ = ["ENGINES", "database_api", "dialect"]

#: Engines Splink runs on, with the Splink dialect of each.
ENGINES: dict[str, str] = {"duckdb": "duckdb", "spark": "spark"}


def dialect(ctx: MatchContext) -> str:
    """Splink's SQL dialect for the run's engine.

    Raises
    ------
    UnsupportedInput
        On an engine Splink does not run on here (the run is recorded as skipped).
    """
    kind = ctx.engine_kind
    if kind not in ENGINES:
        msg = f"splink runs on {' and '.join(ENGINES)}; this run's engine is {kind}"
        raise UnsupportedInput(msg)
    return ENGINES[kind]


def database_api(ctx: MatchContext) -> DatabaseAPI:
    """A new Splink database API on the run's engine (see the module docstring)."""
    if dialect(ctx) == "spark":
        from matchers.splink_spark import spark_api

        return spark_api(ctx.engine)
    return DuckDBAPI(connection=ctx.con)
