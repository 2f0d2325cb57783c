"""The sqlglot side of :mod:`bench.sql.transpile`: the Spark dialect and the rewrites.

sqlglot's DuckDB -> Spark translation gets some constructs wrong or writes SQL Spark
cannot run. This module holds the fixes: :class:`SparkIdbench`, sqlglot's Spark dialect
with a generator that keeps ``QUALIFY`` and ``WITHIN GROUP`` as written, and the named
rewrites of :data:`REWRITES`, each a function over the parsed tree that
:func:`bench.sql.transpile.plan` applies in order to every query before writing it in
:class:`SparkIdbench`. A rewrite that meets a construct with no translation raises
:class:`~bench.sql.interface.UnsupportedOnEngine` naming it. The statement plans the
Spark engine executes are in :mod:`bench.sql.transpile`. This module does not import
pyspark.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from sqlglot import exp, transforms
from sqlglot.dialects.spark import Spark
from sqlglot.generators.spark import SparkGenerator

from bench.sql.interface import UnsupportedOnEngine

__all__ = ["PARQUET_VIEW_PREFIX", "REWRITES", "RewriteContext", "SparkIdbench"]

#: Prefix of the temporary views that stand for ``read_parquet([...])`` file lists.
PARQUET_VIEW_PREFIX = "__idbench_parquet_"


# ----------------------------------------------------------------------------- dialect
class _Generator(SparkGenerator):
    """Spark generator that keeps ``QUALIFY`` and ``WITHIN GROUP`` as written.

    sqlglot's Spark generator rewrites ``QUALIFY`` into a subquery whose ``SELECT *``
    leaks the window column (``_w``) into the result, and turns ``percentile_disc(q)
    WITHIN GROUP (ORDER BY x)`` into ``percentile_approx``; Spark 4 runs both natively.
    """

    TRANSFORMS: ClassVar[dict] = {
        **{k: v for k, v in SparkGenerator.TRANSFORMS.items() if k is not exp.WithinGroup},
        exp.Select: transforms.preprocess(
            [
                transforms.eliminate_distinct_on,
                transforms.unnest_to_explode,
                transforms.any_to_exists,
            ]
        ),
    }


class SparkIdbench(Spark):
    """sqlglot's Spark dialect with :class:`_Generator`."""

    Generator = _Generator


# ----------------------------------------------------------------------------- rewrites
@dataclass
class RewriteContext:
    """What the rewrites of one statement share and collect for the engine.

    Attributes
    ----------
    parquet_sources
        ``view -> paths`` of the ``read_parquet`` file lists met so far.
    path
        Maps the file names of ``read_parquet`` and ``COPY`` (see
        :func:`bench.sql.transpile.plan`).
    aliases
        How many aliases :meth:`alias` has handed out.
    """

    parquet_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path: Callable[[str], str] = str
    aliases: int = 0

    def alias(self, stem: str) -> str:
        """A fresh alias ``__{stem}{n}``, unique within the statement."""
        self.aliases += 1
        return f"__{stem}{self.aliases}"


def _innermost_first(tree: exp.Expr, *kinds: type[exp.Expr]) -> list[exp.Expr]:
    """The nodes of ``kinds`` in ``tree``, every node after the nodes inside it.

    A rewrite that copies a node's arguments into a new node must meet the nested
    calls first (``regexp_replace(regexp_replace(...))``), or the copy keeps them as
    they were.
    """
    return list(reversed(list(tree.find_all(*kinds))))


def strip_materialized(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """Drop ``MATERIALIZED`` from CTEs: sqlglot keeps it, Spark does not parse it.

    Spark inlines a CTE that is read twice (the cascade's ``WITH k AS MATERIALIZED``
    is then normalised twice; materialise it with a table where that matters).
    """
    for cte in tree.find_all(exp.CTE):
        cte.set("materialized", None)
    return tree


def _row_projections(query: exp.Expr, width: int) -> None:
    """Name the ``width`` columns of a row-value subquery ``__c0``, ``__c1``...

    ``SELECT (a, b) FROM t`` (one DuckDB row value) and ``SELECT a, b FROM t`` both
    become ``SELECT a AS __c0, b AS __c1 FROM t``; set operations are named per branch.
    """
    if isinstance(query, exp.Subquery):
        _row_projections(query.this, width)
        return
    if isinstance(query, exp.SetOperation):
        _row_projections(query.this, width)
        _row_projections(query.expression, width)
        return
    if not isinstance(query, exp.Select):
        msg = f"row-value IN over a {type(query).__name__} subquery"
        raise UnsupportedOnEngine(msg)
    items = query.expressions
    if len(items) == 1 and isinstance(items[0].unalias(), exp.Tuple):
        items = items[0].unalias().expressions
    items = [i.unalias() for i in items]
    if len(items) != width or any(isinstance(i, exp.Star) for i in items):
        msg = f"row-value IN with {width} values and a subquery of {len(items)} columns"
        raise UnsupportedOnEngine(msg)
    query.set("expressions", [exp.alias_(i.copy(), f"__c{k}") for k, i in enumerate(items)])


def rewrite_row_in_subquery(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``(a, b) [NOT] IN (SELECT (x, y) ...)`` -> ``[NOT] EXISTS`` with equalities.

    sqlglot keeps DuckDB's row value in the subquery (one struct column), which Spark
    rejects. ``EXISTS (SELECT 1 FROM (SELECT x AS __c0, y AS __c1 ...) WHERE __c0 = a
    AND __c1 = b)`` is planned as a hash semi/anti join. Exact when neither side holds
    NULLs in the compared columns (idbench's ids never do); with NULLs, DuckDB's
    ``NOT IN`` is NULL (row dropped) where ``NOT EXISTS`` keeps the row.
    """
    for node in _innermost_first(tree, exp.In):
        query = node.args.get("query")
        if query is None or not isinstance(node.this, exp.Tuple):
            continue
        outer = node.this.expressions
        inner = query.copy()
        _row_projections(inner, len(outer))
        if isinstance(inner, exp.Subquery):
            inner = inner.this
        alias = ctx.alias("in")
        cond = exp.and_(
            *(
                exp.EQ(this=exp.column(f"__c{k}", table=alias), expression=value.copy())
                for k, value in enumerate(outer)
            )
        )
        probe = exp.select("1").from_(exp.alias_(exp.Subquery(this=inner), alias)).where(cond)
        node.replace(exp.Exists(this=probe))
    return tree


def rewrite_read_parquet(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``read_parquet('f')`` -> ``parquet.`f```; ``read_parquet(['a', 'b'])`` -> a view.

    Spark SQL reads one path (a file, a folder or a glob) as ``parquet.`path```. A list
    of files becomes a temporary view named after the list
    (:data:`PARQUET_VIEW_PREFIX` + a digest), recorded in
    :attr:`bench.sql.transpile.Statement.parquet_sources` for the engine to register.
    sqlglot emits an empty path for lists and fails on options; options
    (``hive_partitioning``, ``union_by_name``...) raise.
    """
    for node in _innermost_first(tree, exp.ReadParquet):
        table = node.parent
        if not isinstance(table, exp.Table) or len(node.expressions) != 1:
            msg = f"{node.sql('duckdb')}: read_parquet with options or outside FROM"
            raise UnsupportedOnEngine(msg)
        arg = node.expressions[0]
        values = arg.expressions if isinstance(arg, exp.Array) else [arg]
        if not values or not all(isinstance(v, exp.Literal) and v.is_string for v in values):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: computed paths")
        paths = [ctx.path(v.name) for v in values]
        if len(paths) == 1:
            new = exp.Table(
                this=exp.to_identifier(paths[0], quoted=True), db=exp.to_identifier("parquet")
            )
        else:
            digest = hashlib.sha1("\n".join(paths).encode(), usedforsecurity=False).hexdigest()
            view = PARQUET_VIEW_PREFIX + digest[:16]
            ctx.parquet_sources[view] = tuple(paths)
            new = exp.Table(this=exp.to_identifier(view, quoted=True))
        if table.args.get("alias") is not None:
            new.set("alias", table.args["alias"].copy())
        table.replace(new)
    return tree


def keep_strip_accents(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """Keep ``strip_accents(x)``: a call of the Arrow UDF the Spark engine registers.

    Spark has no such function (:func:`bench.sql.spark.strip_accents_arrow`).
    """
    for node in tree.find_all(exp.Anonymous):
        if node.name.lower() == "strip_accents":
            if len(node.expressions) != 1:
                msg = f"{node.sql('duckdb')}: strip_accents takes one argument"
                raise UnsupportedOnEngine(msg)
            node.set("this", "strip_accents")
    return tree


def _java_replacement(rewrite: str, shift: int) -> str:
    """A DuckDB (RE2) replacement string in Java's syntax.

    RE2 refers to groups as ``\\1`` and escapes a backslash as ``\\\\``; Java uses
    ``$1`` and treats ``$`` and ``\\`` as special. ``shift`` renumbers the groups (the
    first-match form adds groups in front of the pattern).
    """
    out: list[str] = []
    chars = iter(rewrite)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            if nxt.isdigit():
                out.append(f"${int(nxt) + shift}")
            elif nxt == "\\":
                out.append("\\\\")
            else:
                msg = f"regexp_replace replacement {rewrite!r}: invalid escape \\{nxt}"
                raise UnsupportedOnEngine(msg)
        elif ch == "$":
            out.append("\\$")
        else:
            out.append(ch)
    return "".join(out)


def rewrite_regexp_replace(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """DuckDB ``regexp_replace(s, p, r[, flags])`` -> Spark ``regexp_replace``.

    DuckDB replaces the *first* match unless the flags hold ``g``; Spark always
    replaces all, and sqlglot drops the flags. Without ``g`` the pattern becomes
    ``^([\\s\\S]*?)(p)`` (the shortest prefix before the first match) with the prefix
    put back (``$1``). ``i`` becomes ``(?i)``; ``c`` is the default; other flags, POSIX
    classes (``[[:alpha:]]``, which Java reads differently) and computed patterns or
    replacements raise. Group references (``\\1``) become Java's ``$1``.
    """
    for node in _innermost_first(tree, exp.RegexpReplace):
        flags_node = node.args.get("modifiers")
        if flags_node is not None and not (
            isinstance(flags_node, exp.Literal) and flags_node.is_string
        ):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: computed regexp_replace flags")
        flags = flags_node.name if flags_node is not None else ""
        if set(flags) - set("gic"):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: regexp_replace flags {flags!r}")
        pattern, replacement = node.expression, node.args.get("replacement")
        literal = all(isinstance(p, exp.Literal) and p.is_string for p in (pattern, replacement))
        if not literal:
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: computed regexp_replace pattern")
        if "[[:" in pattern.name:
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: POSIX character classes")
        regex, rewrite = pattern.name, replacement.name
        if "g" in flags:
            rewrite = _java_replacement(rewrite, 0)
        else:
            regex = f"^([\\s\\S]*?)({regex})"
            rewrite = "$1" + _java_replacement(rewrite, 2)  # \0 is group 2 here
        if flags.rfind("i") > flags.rfind("c"):  # the last of i / c wins, as in DuckDB
            regex = "(?i)" + regex
        node.replace(
            exp.RegexpReplace(
                this=node.this.copy(),
                expression=exp.Literal.string(regex),
                replacement=exp.Literal.string(rewrite),
            )
        )
    return tree


def rewrite_quantiles(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``quantile_disc(x, q)`` / ``quantile(x, q)`` / ``quantile_cont(x, q)`` -> ordered sets.

    sqlglot emits ``PERCENTILE_DISC(x, q)`` (Spark wants one argument) and turns
    ``quantile`` (DuckDB: discrete) into Spark's continuous ``PERCENTILE``. Spark's
    ``percentile_disc(q) WITHIN GROUP (ORDER BY x)`` picks the same element as DuckDB
    (the first whose cumulative share reaches ``q``). Lists of quantiles raise.
    """
    kinds = (exp.PercentileDisc, exp.PercentileCont, exp.Quantile)
    for node in _innermost_first(tree, *kinds):
        if isinstance(node.parent, exp.WithinGroup):
            continue
        value = node.this
        q = node.args.get("quantile") or node.args.get("expression")
        if q is None or isinstance(q, exp.Array | exp.Tuple):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: a list of quantiles")
        cls = exp.PercentileCont if isinstance(node, exp.PercentileCont) else exp.PercentileDisc
        ordered = exp.Order(expressions=[exp.Ordered(this=value.copy(), nulls_first=False)])
        node.replace(exp.WithinGroup(this=cls(this=q.copy()), expression=ordered))
    return tree


def rewrite_epoch(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``epoch(ts)`` -> seconds as DOUBLE, fractions kept; ambiguous ``epoch_ms`` raises.

    sqlglot emits ``UNIX_TIMESTAMP(ts)``, which drops the fraction of a second. The
    translation is ``CAST(UNIX_MICROS(CAST(ts AS TIMESTAMP)) AS DOUBLE) / 1000000``
    (right for DuckDB's naive timestamps when the session time zone is UTC, as
    :func:`~bench.sql.spark.spark_session` sets it). ``epoch(a - b)`` (an interval in
    DuckDB) raises: write ``epoch(a) - epoch(b)``. ``epoch_ms/us/ns(x)`` means
    timestamp -> number or number -> timestamp depending on the type of ``x``; sqlglot
    assumes the latter, so it is kept only for numeric literals and casts.
    """
    for node in _innermost_first(tree, exp.TimeToUnix):
        arg = node.this
        if isinstance(arg, exp.Sub | exp.Interval):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: epoch() of an interval")
        ts = exp.Cast(this=arg.copy(), to=exp.DataType.build("TIMESTAMP"))
        micros = exp.Anonymous(this="UNIX_MICROS", expressions=[ts])
        seconds = exp.Div(
            this=exp.Cast(this=micros, to=exp.DataType.build("DOUBLE")),
            expression=exp.Literal.number(1000000),
        )
        node.replace(exp.Paren(this=seconds))
    for node in tree.find_all(exp.UnixToTime):
        scale = node.args.get("scale")
        arg = node.this
        numeric = (isinstance(arg, exp.Literal) and not arg.is_string) or (
            isinstance(arg, exp.Cast) and arg.to.is_type(*exp.DataType.NUMERIC_TYPES)
        )
        if scale is not None and not numeric:
            msg = f"{node.sql('duckdb')}: epoch_ms/us/ns of a column is ambiguous on Spark"
            raise UnsupportedOnEngine(msg)
    return tree


def rewrite_hash(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``hash(a, ...)`` -> ``(XXHASH64(a, ...) & 9223372036854775807)``.

    sqlglot keeps ``HASH``: Spark's is 32 bits (collisions at 10M rows) and signed.
    This is 64 bits and non-negative like DuckDB's ``UBIGINT``, but the values differ:
    a sample drawn with ``hash(id) % n`` picks other (equally random) rows.
    """
    for node in _innermost_first(tree, exp.Anonymous):
        if node.name.lower() == "hash":
            xx = exp.Anonymous(this="XXHASH64", expressions=[e.copy() for e in node.expressions])
            mask = exp.Literal.number(2**63 - 1)
            node.replace(exp.Paren(this=exp.BitwiseAnd(this=xx, expression=mask)))
    return tree


def rewrite_strlen(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``strlen(s)`` (bytes) -> ``OCTET_LENGTH(ENCODE(s, 'utf-8'))``.

    sqlglot keeps ``STRLEN``, which Spark does not have; its ``LENGTH`` counts
    characters, as DuckDB's does.
    """
    for node in _innermost_first(tree, exp.Anonymous):
        if node.name.lower() == "strlen" and len(node.expressions) == 1:
            arg = node.expressions[0].copy()
            encoded = exp.Anonymous(this="ENCODE", expressions=[arg, exp.Literal.string("utf-8")])
            node.replace(exp.Anonymous(this="OCTET_LENGTH", expressions=[encoded]))
    return tree


_UNSIGNED = {
    exp.DType.INT128: "DECIMAL(38, 0)",
    exp.DType.UINT128: "DECIMAL(38, 0)",
    exp.DType.UBIGINT: "DECIMAL(20, 0)",
    exp.DType.UINT: "BIGINT",
    exp.DType.USMALLINT: "INT",
    exp.DType.UTINYINT: "SMALLINT",
}


def rewrite_unsigned_types(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """``HUGEINT`` / ``UBIGINT`` / ``UINTEGER``... -> the smallest Spark type holding them.

    sqlglot emits ``INT128`` and ``UBIGINT``, which Spark does not know.
    """
    for node in _innermost_first(tree, exp.DataType):
        target = _UNSIGNED.get(node.this)
        if target is not None:
            new = exp.DataType.build(target, dialect="spark")
            if node is tree:  # a column type on its own (CREATE TABLE x (c HUGEINT))
                return new
            node.replace(new)
    return tree


def check_ordered_lists(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """Refuse ``list(x ORDER BY y)`` / ``array_agg(x ORDER BY y)``.

    sqlglot emits ``COLLECT_LIST(x)`` and silently drops the order. (``string_agg``
    with ``ORDER BY`` translates to ``LISTAGG ... WITHIN GROUP``, which Spark runs.)
    """
    for node in tree.find_all(exp.ArrayAgg):
        if isinstance(node.this, exp.Order):
            raise UnsupportedOnEngine(f"{node.sql('duckdb')}: ordered list()/array_agg()")
    return tree


def check_asof_joins(tree: exp.Expr, ctx: RewriteContext) -> exp.Expr:
    """Refuse ``ASOF JOIN``: Spark SQL has no as-of join.

    sqlglot passes it through and Spark fails to parse it; the anonymous matchers' local
    IP degree (:func:`matchers.cooccurrence.local_degree_sql`) is built on two of them,
    which is why those matchers run on DuckDB only.
    """
    for node in tree.find_all(exp.Join):
        if str(node.args.get("method") or "").upper() == "ASOF":
            raise UnsupportedOnEngine(f"{node.sql('duckdb')[:80]}: ASOF JOIN has no Spark form")
    return tree


#: The rewrites, in the order :func:`bench.sql.transpile.plan` applies them to every
#: query it translates.
REWRITES: tuple[Callable[[exp.Expr, RewriteContext], exp.Expr], ...] = (
    strip_materialized,
    rewrite_row_in_subquery,
    rewrite_read_parquet,
    keep_strip_accents,
    rewrite_regexp_replace,
    rewrite_quantiles,
    rewrite_epoch,
    rewrite_hash,
    rewrite_strlen,
    rewrite_unsigned_types,
    check_ordered_lists,
    check_asof_joins,
)
