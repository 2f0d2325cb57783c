"""DuckDB SQL to Spark: the plans :class:`~bench.sql.spark.SparkEngine` executes.

idbench writes all its SQL in DuckDB's dialect. :func:`plan` parses a DuckDB statement
(or several, separated by ``;``) with :mod:`sqlglot` and returns one :class:`Statement`
per statement: what to do (``kind``) plus the Spark SQL of the query it needs. Only
queries are handed to Spark SQL; tables, inserts, deletes, renames and ``COPY`` are
carried out by the engine with DataFrame calls, because Spark has no mutable temporary
tables (sqlglot turns ``CREATE TEMP TABLE ... AS`` into a lazy view, so a loop that
rebuilds a table from itself ends in ``VIEW_EXCEED_MAX_NESTED_DEPTH``).

Every query is passed through the rewrites of
:data:`bench.sql.spark_dialect.REWRITES`, which fix what sqlglot's DuckDB -> Spark
translation gets wrong or cannot run, and written in
:class:`~bench.sql.spark_dialect.SparkIdbench`; both live in
:mod:`bench.sql.spark_dialect`. Anything that cannot be translated raises
:class:`~bench.sql.interface.UnsupportedOnEngine` naming the construct. This module
does not import pyspark.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

from bench.sql.interface import UnsupportedOnEngine
from bench.sql.spark_dialect import PARQUET_VIEW_PREFIX, REWRITES, RewriteContext, SparkIdbench

__all__ = ["PARQUET_VIEW_PREFIX", "Statement", "plan", "plan_query", "quote", "to_spark"]

_Create = Literal["create_table", "create_view", "create_empty"]
Kind = Literal["query", "insert", "delete", "drop", "rename", "copy"] | _Create


@dataclass(frozen=True)
class Statement:
    """One DuckDB statement as the Spark engine runs it.

    ``kind`` says what to do: ``query`` (run ``select_sql``); ``create_table`` /
    ``create_view`` (``name`` from ``select_sql``); ``create_empty`` (``name`` with
    ``columns`` of Spark ``types``); ``insert`` (rows of ``select_sql`` into ``name``,
    into ``columns`` if listed, matched by name if ``by_name``); ``delete`` (rebuild
    ``name`` from ``select_sql``, the rows the ``WHERE`` keeps); ``drop``; ``rename``
    (to ``new_name``); ``copy`` (``select_sql`` to Parquet at ``path`` with
    ``options``: ``format``, ``compression``, ``partition_by``). Names are unquoted, as
    written. ``if_exists`` is ``IF EXISTS`` / ``IF NOT EXISTS``. ``parquet_sources``
    lists ``(view, paths)`` to register before running ``select_sql`` (file lists of
    ``read_parquet``); ``source`` is the DuckDB text, for error messages.
    """

    kind: Kind
    name: str | None = None
    select_sql: str | None = None
    columns: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    path: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    new_name: str | None = None
    replace: bool = False
    if_exists: bool = False
    by_name: bool = False
    parquet_sources: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source: str = ""

    @property
    def schema(self) -> str:
        """Spark DDL schema of ``create_empty`` (``\\`node\\` BIGINT, ...``)."""
        return ", ".join(f"{quote(c)} {t}" for c, t in zip(self.columns, self.types, strict=True))


def quote(name: str) -> str:
    """Quote an identifier for Spark SQL (backticks, embedded backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


# ----------------------------------------------------------------------------- rewriting
def _spark_sql(query: exp.Expr, ctx: RewriteContext) -> str:
    """Apply :data:`REWRITES` to a copy of ``query``; return its Spark SQL."""
    tree = query.copy()
    for rewrite in REWRITES:
        tree = rewrite(tree, ctx)
    try:
        return tree.sql(dialect=SparkIdbench, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        msg = f"sqlglot cannot write this in Spark SQL: {exc}"
        raise UnsupportedOnEngine(msg) from exc


# ----------------------------------------------------------------------------- statements
def _name(table: exp.Expr) -> str:
    """Unquoted name of a table reference; ``temp.x`` / ``main.x`` are plain ``x``."""
    if isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise UnsupportedOnEngine(f"{table.sql('duckdb')}: not a table name")
    qualifiers = {p.name.lower() for p in table.parts[:-1]}
    if qualifiers - {"temp", "main", "memory"}:
        raise UnsupportedOnEngine(f"{table.sql('duckdb')}: qualified names (catalog, schema)")
    return table.name


def _create(node: exp.Create, ctx: RewriteContext) -> Statement:
    kind = (node.args.get("kind") or "").upper()
    flags = {"replace": bool(node.args.get("replace")), "if_exists": bool(node.args.get("exists"))}
    body = node.expression
    if kind == "TABLE" and isinstance(node.this, exp.Schema) and body is None:
        defs = [c for c in node.this.expressions if isinstance(c, exp.ColumnDef)]
        if len(defs) != len(node.this.expressions):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: table constraints")
        names = tuple(c.name for c in defs)
        types = tuple(_spark_sql(c.args["kind"], ctx) for c in defs)
        return Statement("create_empty", _name(node.this), columns=names, types=types, **flags)
    if kind in ("TABLE", "VIEW") and isinstance(body, exp.Query):
        if isinstance(node.this, exp.Schema):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: column list in CREATE ... AS")
        out = "create_table" if kind == "TABLE" else "create_view"
        return Statement(out, _name(node.this), select_sql=_spark_sql(body, ctx), **flags)
    raise UnsupportedOnEngine(f"CREATE {kind or '?'} of this form")


def _insert(node: exp.Insert, ctx: RewriteContext) -> Statement:
    for arg in ("conflict", "returning", "overwrite", "alternative", "where"):
        if node.args.get(arg):
            raise UnsupportedOnEngine(f"INSERT with {arg.upper().replace('_', ' ')}")
    target = node.this
    columns = tuple(c.name for c in target.expressions) if isinstance(target, exp.Schema) else ()
    body = node.expression
    if not isinstance(body, exp.Query | exp.Values):
        raise UnsupportedOnEngine(f"INSERT from {type(body).__name__}")
    return Statement(
        "insert",
        _name(target),
        select_sql=_spark_sql(body, ctx),
        columns=columns,
        by_name=bool(node.args.get("by_name")),
    )


def _delete(node: exp.Delete, ctx: RewriteContext) -> Statement:
    """``DELETE FROM t WHERE c`` -> rebuild ``t`` from ``SELECT * ... WHERE NOT coalesce(c, false)``."""
    if node.args.get("using") or node.args.get("returning"):
        raise UnsupportedOnEngine("DELETE with USING or RETURNING")
    name = _name(node.this)
    where = node.args.get("where")
    cond = where.this.copy() if where is not None else exp.true()
    keep = exp.not_(exp.Coalesce(this=exp.Paren(this=cond), expressions=[exp.false()]))
    rebuild = exp.select("*").from_(exp.Table(this=exp.to_identifier(name, quoted=True)))
    return Statement("delete", name, select_sql=_spark_sql(rebuild.where(keep), ctx))


def _drop(node: exp.Drop) -> list[Statement]:
    kind = (node.args.get("kind") or "").upper()
    if kind not in ("TABLE", "VIEW"):
        raise UnsupportedOnEngine(f"DROP {kind or '?'}")
    exists = bool(node.args.get("exists"))
    tables = node.args.get("tables") or [node.this]
    return [Statement("drop", _name(t), if_exists=exists) for t in tables]


def _rename(node: exp.Alter) -> Statement:
    actions = node.args.get("actions") or []
    if len(actions) != 1 or not isinstance(actions[0], exp.AlterRename):
        raise UnsupportedOnEngine(f"{node.sql('duckdb')}: ALTER other than RENAME TO")
    return Statement(
        "rename",
        _name(node.this),
        new_name=_name(actions[0].this),
        if_exists=bool(node.args.get("exists")),
    )


#: ``COPY`` options that only tune DuckDB's writer; Spark's writer ignores them.
_COPY_IGNORED = re.compile(r"ROW_GROUP_SIZE(_BYTES)?|OVERWRITE(_OR_IGNORE)?|PER_THREAD_OUTPUT")


def _copy_options(node: exp.Copy, path: str) -> dict[str, str]:
    """``format``, ``compression`` and ``partition_by`` of a ``COPY ... TO``."""
    options: dict[str, str] = {}
    for param in node.args.get("params") or []:
        key, value = param.this.name.upper(), param.expression
        if key in ("FORMAT", "COMPRESSION"):
            options[key.lower()] = value.name.lower()
        elif key == "PARTITION_BY":
            items = value.expressions if isinstance(value, exp.Tuple) else [value.unnest()]
            options["partition_by"] = ",".join(i.name for i in items)
        elif not _COPY_IGNORED.fullmatch(key):
            raise UnsupportedOnEngine(f"COPY option {key}")
    fmt = options.setdefault("format", "parquet" if path.endswith(".parquet") else "csv")
    if fmt != "parquet":
        raise UnsupportedOnEngine(f"COPY ... (FORMAT {fmt}): only Parquet")
    return options


def _copy(node: exp.Copy, ctx: RewriteContext) -> Statement:
    """``COPY (q) TO 'p' (FORMAT parquet, ...)`` or ``COPY t TO ...`` -> a copy plan."""
    if node.args.get("kind"):
        raise UnsupportedOnEngine("COPY ... FROM")
    source = node.this
    if isinstance(source, exp.Subquery):
        query = source.this
    elif isinstance(source, exp.Table | exp.Schema):
        table = source.this if isinstance(source, exp.Schema) else source
        cols = [c.name for c in source.expressions] if isinstance(source, exp.Schema) else ["*"]
        query = exp.select(*cols).from_(table.copy())
    else:
        raise UnsupportedOnEngine(f"COPY from {type(source).__name__}")
    files = node.args.get("files") or []
    if len(files) != 1 or not (isinstance(files[0], exp.Literal) and files[0].is_string):
        raise UnsupportedOnEngine("COPY ... TO a computed or multiple targets")
    path = ctx.path(files[0].name)
    return Statement(
        "copy", select_sql=_spark_sql(query, ctx), path=path, options=_copy_options(node, path)
    )


def _plan_one(node: exp.Expr, ctx: RewriteContext) -> list[Statement]:
    if isinstance(node, exp.Query | exp.Values):
        return [Statement("query", select_sql=_spark_sql(node, ctx))]
    if isinstance(node, exp.Drop):
        return _drop(node)
    planners = {exp.Create: _create, exp.Insert: _insert, exp.Delete: _delete, exp.Copy: _copy}
    if type(node) in planners:
        return [planners[type(node)](node, ctx)]
    if isinstance(node, exp.Alter):
        return [_rename(node)]
    raise UnsupportedOnEngine(f"{type(node).__name__.upper()} statements")


def _parse(sql: str) -> list[exp.Expr]:
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except ParseError as exc:
        raise UnsupportedOnEngine(f"sqlglot cannot parse this DuckDB SQL: {exc}") from exc
    return [t for t in trees if t is not None]


def plan(sql: str, *, path: Callable[[str], str] = str) -> list[Statement]:
    """Translate DuckDB SQL (one or more statements) into :class:`Statement` plans.

    ``path`` maps the file names of ``read_parquet`` and ``COPY`` (the Spark engine
    makes relative local paths absolute: Spark resolves them against the directory its
    JVM started in, DuckDB against the current one).

    Raises
    ------
    UnsupportedOnEngine
        A statement or construct that has no translation (the message names it).
    """
    out: list[Statement] = []
    trees = _parse(sql)
    for tree in trees:
        ctx = RewriteContext(path=path)
        source = sql.strip() if len(trees) == 1 else tree.sql("duckdb")
        for st in _plan_one(tree, ctx):
            sources = tuple(ctx.parquet_sources.items())
            out.append(replace(st, parquet_sources=sources, source=source))
    return out


def plan_query(sql: str, *, path: Callable[[str], str] = str) -> Statement:
    """The plan of one DuckDB query (``SELECT``, set operation, ``VALUES``).

    Raises
    ------
    UnsupportedOnEngine
        ``sql`` is not exactly one query, or does not translate.
    """
    statements = plan(sql, path=path)
    if len(statements) != 1 or statements[0].kind != "query":
        kinds = [s.kind for s in statements]
        raise UnsupportedOnEngine(f"expected one query, got {kinds or 'nothing'}")
    return statements[0]


def to_spark(sql: str) -> str:
    """Spark SQL of one DuckDB query (file lists in ``read_parquet`` need :func:`plan`)."""
    st = plan_query(sql)
    if st.parquet_sources:
        raise UnsupportedOnEngine("read_parquet over a list of files: use plan() and an engine")
    assert st.select_sql is not None
    return st.select_sql
