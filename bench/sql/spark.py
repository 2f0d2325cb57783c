"""Apache Spark behind :class:`~bench.sql.interface.Engine`: idbench's DuckDB SQL on Spark.

Every statement is translated by :mod:`bench.sql.transpile` into a plan; queries run as
Spark SQL, everything else as DataFrame calls:

- tables (``CREATE TABLE ... AS``, :meth:`SparkEngine.create_table`) are computed once,
  materialised with ``localCheckpoint(eager=True)`` and registered as temporary views.
  A checkpoint cuts the lineage, so a loop that rebuilds a table from itself (pointer
  jumping in :mod:`bench.sql.graph`) plans in constant time per step;
- ``INSERT`` and ``DELETE`` rebuild the table (old rows plus new ones, or the rows the
  ``WHERE`` keeps) and checkpoint it again; ``ALTER TABLE ... RENAME`` re-registers the
  same checkpoint under the new name; ``DROP`` unregisters and unpersists;
- views (``CREATE VIEW``) are Spark SQL temporary views, so like DuckDB's they read
  the tables they name at the time they are read.

The engine keeps a dict of what it made (:attr:`SparkEngine.tables`; names are
case-insensitive, as in DuckDB). Failures are re-raised as
:class:`~bench.sql.engine.SQLError` carrying the DuckDB SQL and its Spark translation;
what does not translate raises :class:`~bench.sql.interface.UnsupportedOnEngine`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench.sql import transpile
from bench.sql.engine import SQLError, materialise
from bench.sql.interface import Engine, UnsupportedOnEngine
from bench.sql.transpile import Statement, quote

__all__ = ["SparkEngine", "similarity_jar", "spark_session", "strip_accents_arrow"]

log = logging.getLogger(__name__)

#: JVM flags for a fast start: C1 only, serial GC, CPU count as the local master says.
#: They suit tests and short runs; a long benchmark gains from C2 (``fast_start=False``).
#: C1 alone gets a 48 MB code cache, which a Splink fit fills within minutes (the JVM
#: then stops compiling): hence the larger one.
FAST_START_JVM = (
    "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ActiveProcessorCount={cores} "
    "-XX:ReservedCodeCacheSize=256m"
)


def similarity_jar() -> str | None:
    """Splink's jar of similarity functions (Jaro-Winkler, Damerau-Levenshtein...) for
    Spark 4, shipped inside the splink wheel; ``None`` when splink is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("splink")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = (
        Path(next(iter(spec.submodule_search_locations))) / "internals" / "files" / "spark_jars"
    )
    jars = sorted(folder.glob("scala-udf-similarity-*_spark4.x.jar"))
    return str(jars[-1]) if jars else None


def _local_cores(master: str) -> int | None:
    """Cores of a ``local[N]`` / ``local[*]`` / ``local`` master; ``None`` for a cluster."""
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if m is None:
        return None
    n = m.group(1)
    return (os.cpu_count() or 1) if n == "*" else int(n or 1)


def spark_session(
    master: str = "local[2]",
    conf: dict[str, str] | None = None,
    app_name: str = "idbench",
    *,
    fast_start: bool = True,
    quiet: bool = True,
) -> SparkSession:
    """Start (or join) a Spark session for idbench.

    Parameters
    ----------
    master
        ``local[N]``, ``spark://host:port`` or a Spark Connect ``sc://host:port`` remote
        (built with ``SparkSession.builder.remote``).
    conf
        Spark settings, applied over idbench's defaults: UI off, shuffle partitions
        2x the local cores (4 on a cluster), ``spark.driver.memory=2g``, session time
        zone UTC (DuckDB's timestamps are naive; the translation of ``epoch()`` relies on
        it), Arrow transfers on; for local masters the driver bound to 127.0.0.1 and the
        (unused) SQL warehouse in the temporary directory, not ``./spark-warehouse``.
    app_name
        Application name.
    fast_start
        Add :data:`FAST_START_JVM` to ``spark.driver.extraJavaOptions`` (local masters).
    quiet
        Spark log level ``OFF`` and pyspark's own error loggers silenced: failures reach
        the caller as :class:`~bench.sql.engine.SQLError`, no need to print them twice.

    Notes
    -----
    For local masters, ``PYSPARK_PYTHON`` defaults to this interpreter (the
    ``strip_accents`` UDF needs pyarrow in the workers). An existing session is
    returned as it is (``getOrCreate``): JVM settings only apply to a new one.
    """
    builder = SparkSession.builder.appName(app_name)
    cores = _local_cores(master)
    settings: dict[str, str] = {
        "spark.sql.shuffle.partitions": str(2 * cores if cores else 4),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if master.startswith("sc://"):
        builder = builder.remote(master)
    else:
        builder = builder.master(master)
        settings |= {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "2g",
            # not ./spark-warehouse: a run's working directory is its inputs folder
            "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "idbench-spark-warehouse"),
        }
        if cores:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            settings |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
            if fast_start:
                settings["spark.driver.extraJavaOptions"] = FAST_START_JVM.format(cores=cores)
    merged = settings | dict(conf or {})
    jar = similarity_jar()
    if jar is not None and not master.startswith("sc://"):
        # Splink's Spark backend registers its functions when the jar is on the classpath
        given = [j for j in str(merged.get("spark.jars", "")).split(",") if j]
        merged["spark.jars"] = ",".join([*given, jar] if jar not in given else given)
    for key, value in merged.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if quiet:
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if not master.startswith("sc://"):
            spark.sparkContext.setLogLevel("OFF")
    return spark


def strip_accents_arrow(values: pa.Array) -> pa.Array:
    """DuckDB's ``strip_accents`` on an Arrow string array (vectorised).

    Decompose (NFD), drop every combining mark (``\\p{M}``), recompose (NFC): what
    DuckDB does with utf8proc (same output on every code point below U+3000 and on
    Hangul). Letters without a decomposition (``ø``, ``ł``, ``ß``) stay.
    """
    decomposed = pc.utf8_normalize(values, form="NFD")
    stripped = pc.replace_substring_regex(decomposed, pattern=r"\p{M}+", replacement="")
    return pc.utf8_normalize(stripped, form="NFC")


def _register_udfs(spark: SparkSession) -> None:
    """Register ``strip_accents`` as an Arrow UDF (a pandas UDF before Spark 4.1)."""
    arrow_udf = getattr(F, "arrow_udf", None)
    if arrow_udf is not None:

        def strip(values: pa.Array) -> pa.Array:
            return strip_accents_arrow(values)

        fn = arrow_udf(strip, "string")
    else:  # pragma: no cover - Spark 4.0
        import pandas as pd

        def strip_pd(values: pd.Series) -> pd.Series:
            return strip_accents_arrow(pa.array(values, type=pa.string())).to_pandas()

        fn = F.pandas_udf(strip_pd, "string")
    spark.udf.register("strip_accents", fn)


@dataclass(frozen=True)
class _Held:
    """What the engine registered under a name.

    A frame (``checkpointed`` ones are unpersisted when replaced or dropped) or, with
    ``frame=None``, a view defined in SQL.
    """

    name: str
    frame: DataFrame | None
    checkpointed: bool = False


def _spark_friendly(table: pa.Table) -> pa.Table:
    """Cast Arrow types Spark cannot read (large/view strings, dictionaries) to plain ones."""

    def plain(t: pa.DataType) -> pa.DataType:
        t = t.value_type if pa.types.is_dictionary(t) else t
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pa.string()
        return pa.binary() if pa.types.is_large_binary(t) or pa.types.is_binary_view(t) else t

    schema = pa.schema([f.with_type(plain(f.type)) for f in table.schema])
    return table if schema.equals(table.schema) else table.cast(schema)


def _col(name: str) -> Any:
    return F.col(quote(name))


def _short(exc: Exception, lines: int = 12) -> str:
    """The first lines of an error (a JVM stack trace says little more)."""
    text = str(exc).strip().splitlines()
    return "\n".join(text[:lines]) + ("\n..." if len(text) > lines else "")


class SparkEngine(Engine):
    """An :class:`Engine` over a :class:`~pyspark.sql.SparkSession`.

    Parameters
    ----------
    spark
        The session (see :func:`spark_session`).
    scratch_dir
        Checkpoint directory; only used where ``localCheckpoint`` is missing (some
        Spark Connect servers), where tables are then checkpointed reliably here
        (``checkpoint(eager=True)``). Without one they are persisted and counted.
    stop_on_close
        :meth:`close` also stops the session.
    """

    kind: ClassVar[str] = "spark"
    dialect: ClassVar[str] = "spark"

    def __init__(
        self,
        spark: SparkSession,
        scratch_dir: str | Path | None = None,
        *,
        stop_on_close: bool = False,
    ) -> None:
        self.spark = spark
        self.scratch_dir = Path(scratch_dir) if scratch_dir is not None else None
        self.stop_on_close = stop_on_close
        #: Lower-cased name -> the table, frame or view the engine registered under it.
        self.tables: dict[str, _Held] = {}
        self._sources: set[str] = set()  # views standing for read_parquet file lists
        self._local_checkpoint = True
        self._local = str(self.settings().get("master") or "").startswith("local")
        if self.scratch_dir is not None:
            self.scratch_dir.mkdir(parents=True, exist_ok=True)
            try:  # classic sessions; a Connect server has its own spark.checkpoint.dir
                spark.sparkContext.setCheckpointDir(str(self.scratch_dir.resolve()))
            except Exception as exc:  # noqa: BLE001 - only the Connect fallback needs it
                log.debug("checkpoint directory not set: %s", exc)
        _register_udfs(spark)

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _errors(self, step: str, source: str, spark_sql: str | None = None) -> Iterator[None]:
        """Re-raise failures as :class:`SQLError` with the DuckDB and the Spark SQL."""
        try:
            yield
        except (SQLError, UnsupportedOnEngine):
            raise
        except Exception as exc:
            text = source.strip() + (f"\n-- Spark SQL --\n{spark_sql}" if spark_sql else "")
            err = SQLError(step, text, RuntimeError(_short(exc)))
            err.duckdb_sql, err.spark_sql = source, spark_sql  # type: ignore[attr-defined]
            raise err from exc

    def _plan(self, sql_text: str, step: str, *, query: bool = False) -> Any:
        """:func:`transpile.plan` (or ``plan_query``); refusals name the step."""
        try:
            if query:
                return transpile.plan_query(sql_text, path=self._path)
            return transpile.plan(sql_text, path=self._path)
        except UnsupportedOnEngine as exc:
            raise UnsupportedOnEngine(f"{step}: {exc}") from exc

    def _path(self, path: str | Path) -> str:
        """A relative local path made absolute (against this process's directory).

        The JVM resolves relative paths against the directory it started in, DuckDB
        against the current one. Paths with a scheme, and every path on a cluster or
        Spark Connect master, are left as they are.
        """
        text = str(path)
        if not self._local or "://" in text or text.startswith("file:"):
            return text
        return str(Path(text).absolute())

    def _frame(self, st: Statement) -> DataFrame:
        """The DataFrame of ``st.select_sql`` (registering its Parquet file lists first)."""
        self._register_sources(st)
        return self.spark.sql(st.select_sql)

    def _register_sources(self, st: Statement) -> None:
        for view, paths in st.parquet_sources:  # re-listed each time: files may change
            self.spark.read.parquet(*paths).createOrReplaceTempView(quote(view))
            self._sources.add(view)

    def _materialise(self, df: DataFrame) -> DataFrame:
        """Compute ``df`` once and cut its lineage.

        ``localCheckpoint(eager=True)`` (executor storage, memory and disk). Where it is
        missing (Spark Connect servers without it), ``checkpoint(eager=True)`` into
        ``scratch_dir``, or without one ``persist`` + ``count`` (keeps the lineage, so
        long rebuild loops plan more slowly there).
        """
        if self._local_checkpoint:
            try:
                return df.localCheckpoint(eager=True)
            except (AttributeError, NotImplementedError):
                log.info("localCheckpoint unavailable; falling back to checkpoint/persist")
                self._local_checkpoint = False
        if self.scratch_dir is not None:
            return df.checkpoint(eager=True)
        kept = df.persist(StorageLevel.MEMORY_AND_DISK)
        kept.count()
        return kept

    def _release(self, held: _Held) -> None:
        """Free the storage of a replaced or dropped checkpoint (best effort)."""
        if not held.checkpointed:
            return
        try:
            jdf = getattr(held.frame, "_jdf", None)
            if jdf is not None and self._local_checkpoint:  # classic: the LogicalRDD's RDD
                jdf.queryExecution().logical().rdd().unpersist(False)
            else:
                held.frame.unpersist()
        except Exception as exc:  # noqa: BLE001 - freeing storage early is an optimisation
            log.debug("could not unpersist %s: %s", held.name, exc)

    def _register(self, name: str, df: DataFrame | None, *, checkpointed: bool = False) -> None:
        """Register ``df`` as ``name``, releasing what held the name before.

        ``df=None`` records a view already created in SQL.
        """
        if df is not None:
            df.createOrReplaceTempView(quote(name))
        old = self.tables.pop(name.lower(), None)
        self.tables[name.lower()] = _Held(name, df, checkpointed)
        if old is not None and old.frame is not df:
            self._release(old)

    def _store(self, name: str, df: DataFrame) -> None:
        self._register(name, self._materialise(df), checkpointed=True)

    def _held(self, name: str, action: str) -> _Held:
        held = self.tables.get(name.lower())
        if held is None or held.frame is None:
            msg = f"{action} {name}: not a table made by this engine"
            raise RuntimeError(msg)
        return held

    # ------------------------------------------------------------------ statements
    def _run(self, st: Statement, step: str) -> None:
        """Carry out one planned statement."""
        creates = st.kind in ("create_table", "create_view", "create_empty")
        if creates and (st.if_exists or not st.replace) and self.exists(st.name):
            if st.if_exists:
                return
            raise RuntimeError(f"table {st.name} already exists")
        if st.kind == "query":
            self._frame(st).write.format("noop").mode("overwrite").save()
        elif st.kind in ("create_table", "delete"):
            if st.kind == "delete":
                self._held(st.name, "DELETE FROM")
            self._store(st.name, self._frame(st))
        elif st.kind == "create_view":
            self._create_view(st.name, st)
        elif st.kind == "create_empty":
            df = self.spark.createDataFrame([], st.schema)
            self._register(st.name, df, checkpointed=False)
        elif st.kind == "insert":
            self._insert(st)
        elif st.kind == "drop":
            if not st.if_exists and not self.exists(st.name):
                raise RuntimeError(f"table {st.name} does not exist")
            self.drop(st.name)
        elif st.kind == "rename":
            self._rename(st)
        elif st.kind == "copy":
            self._write(self._frame(st), st.path, st.options)

    def _create_view(self, name: str, st: Statement) -> None:
        self._register_sources(st)
        self.spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {quote(name)} AS {st.select_sql}")
        self._register(name, None)

    def _insert(self, st: Statement) -> None:
        """``INSERT``: old rows plus the new ones (cast to the table's types), checkpointed."""
        held = self._held(st.name, "INSERT INTO")
        target = held.frame
        new = self._frame(st)
        if st.by_name or st.columns:
            if st.columns:
                new = new.toDF(*st.columns)
            have = {c.lower() for c in new.columns}
            new = new.select(
                [_col(c) if c.lower() in have else F.lit(None).alias(c) for c, _ in target.dtypes]
            )
        elif len(new.columns) != len(target.columns):
            msg = f"table {st.name} has {len(target.columns)} columns, INSERT gives {len(new.columns)}"
            raise RuntimeError(msg)
        new = new.toDF(*target.columns).select([_col(c).cast(t).alias(c) for c, t in target.dtypes])
        self._store(held.name, target.unionAll(new))

    def _rename(self, st: Statement) -> None:
        if not self.exists(st.name):
            if st.if_exists:
                return
            raise RuntimeError(f"table {st.name} does not exist")
        if self.exists(st.new_name):
            raise RuntimeError(f"cannot rename {st.name}: {st.new_name} already exists")
        held = self.tables.pop(st.name.lower(), None) or _Held(st.name, None)
        if held.frame is None:  # a view defined in SQL
            self.spark.sql(f"ALTER VIEW {quote(st.name)} RENAME TO {quote(st.new_name)}")
        else:
            held.frame.createOrReplaceTempView(quote(st.new_name))
            self.spark.catalog.dropTempView(st.name)
        self.tables[st.new_name.lower()] = _Held(st.new_name, held.frame, held.checkpointed)

    def _write(self, df: DataFrame, path: str | Path, options: dict[str, str]) -> None:
        writer = df.write.mode("overwrite").option(
            "compression", options.get("compression", "snappy")
        )
        if options.get("partition_by"):
            writer = writer.partitionBy(*options["partition_by"].split(","))
        writer.parquet(str(path))

    # ------------------------------------------------------------------ Engine
    def execute(self, sql_text: str, *, step: str = "statement") -> None:
        """Run DuckDB statement(s) for their effect (see the module docstring)."""
        for st in self._plan(sql_text, step):
            with self._errors(step, st.source, st.select_sql):
                self._run(st, step)

    def query(self, sql_text: str, *, step: str = "query") -> pa.Table:
        """Run a DuckDB query on Spark; return all rows as Arrow (``DataFrame.toArrow``)."""
        st = self._plan(sql_text, step, query=True)
        with self._errors(step, sql_text, st.select_sql):
            return self._frame(st).toArrow()

    def create_table(self, name: str, sql_text: str, *, step: str = "create table") -> None:
        """Materialise ``sql`` (a DuckDB query) as table ``name`` (a checkpoint)."""
        st = self._plan(sql_text, step, query=True)
        with self._errors(step, sql_text, st.select_sql):
            self._store(name, self._frame(st))

    def create_view(self, name: str, sql_text: str, *, step: str = "create view") -> None:
        """Define ``name`` as a Spark temporary view over ``sql`` (a DuckDB query)."""
        st = self._plan(sql_text, step, query=True)
        with self._errors(step, sql_text, st.select_sql):
            self._create_view(name, st)

    def drop(self, *names: str) -> None:
        """Drop tables or views; unknown names are ignored."""
        for name in names:
            with self._errors(f"drop {name}", f"DROP {name}"):
                self.spark.catalog.dropTempView(name)
                held = self.tables.pop(name.lower(), None)
                if held is not None:
                    self._release(held)

    def exists(self, name: str) -> bool:
        """Whether a table or (temporary) view ``name`` exists."""
        if name.lower() in self.tables:
            return True
        with self._errors(f"find {name}", name):
            return bool(self.spark.catalog.tableExists(quote(name)))

    def columns(self, name: str) -> dict[str, str]:
        """Column name -> Spark type (``bigint``, ``string``...)."""
        with self._errors(f"describe {name}", f"DESCRIBE {name}"):
            return {f.name: f.dataType.simpleString() for f in self.spark.table(quote(name)).schema}

    def read_parquet(
        self, name: str, paths: str | Path | Iterable[str | Path], *, as_table: bool = False
    ) -> None:
        """Expose Parquet files or folders (Spark's part folders too) as ``name``."""
        files = [paths] if isinstance(paths, str | Path) else list(paths)
        files = [self._path(p) for p in files]
        with self._errors(f"load {name}", f"read_parquet({files})"):
            df = self.spark.read.parquet(*files)
            if as_table:
                self._store(name, df)
            else:
                self._register(name, df, checkpointed=False)

    def write_parquet(
        self, sql_text: str, path: str | Path, *, step: str = "write parquet"
    ) -> None:
        """Write the result of ``sql`` as a *folder* of Parquet parts at ``path`` (zstd).

        Spark writes ``path/part-*.parquet`` and a ``_SUCCESS`` marker, in parallel,
        replacing whatever was at ``path`` (``COPY ... TO`` writes the same way). Read
        it back with ``read_parquet('<path>/*.parquet')`` in any DuckDB (the DuckDB
        idbench pins also reads ``read_parquet('<path>')``), or with
        :meth:`read_parquet` on this engine.
        """
        st = self._plan(sql_text, step, query=True)
        with self._errors(step, sql_text, st.select_sql):
            self._write(self._frame(st), self._path(path), {"compression": "zstd"})

    def register_arrow(self, name: str, data: Any) -> None:
        """Expose an Arrow table (or polars/pandas frame, record batch reader) as ``name``."""
        table = _spark_friendly(materialise(self, data, step=f"register {name}"))
        with self._errors(f"register {name}", f"register_arrow({name})"):
            df = self.spark.createDataFrame(table)
            self._register(name, df, checkpointed=False)

    def settings(self) -> dict[str, Any]:
        """Master, application id, Spark version, parallelism and shuffle partitions."""
        conf = self.spark.conf
        out: dict[str, Any] = {
            "spark_version": self.spark.version,
            "app_id": conf.get("spark.app.id", None),
            "shuffle_partitions": conf.get("spark.sql.shuffle.partitions", None),
        }
        try:  # classic sessions; Spark Connect has no SparkContext
            sc = self.spark.sparkContext
            out |= {"master": sc.master, "default_parallelism": sc.defaultParallelism}
        except Exception:  # noqa: BLE001 - Connect raises a pyspark error here
            out |= {
                "master": conf.get("spark.master", None),
                "default_parallelism": conf.get("spark.default.parallelism", None),
            }
        return out

    def close(self) -> None:
        """Drop every table and view the engine made; stop the session if asked to."""
        self.drop(*[held.name for held in list(self.tables.values())], *self._sources)
        self._sources.clear()
        if self.stop_on_close:
            self.spark.stop()
