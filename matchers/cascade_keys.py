"""The normalised key columns the cascade's rules compare, as one SQL query.

:func:`keys_sql` selects ``record_id`` (and ``ts`` when a rule has a time window) with
one normalised column per key column (:mod:`matchers.normalise`): phones and e-mails
through their parts computed once per record, or phones through the ``phonenumbers``
library on their distinct raw values. Junk placeholders (``exclude_junk``) and the
user's ``exclude_values`` (:func:`make_exclusions`, normalised like the column) become
NULL, so they never link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.api import MatchContext, UnsupportedInput, execute, literal, quote_ident
from matchers.normalise import (
    email_base_sql,
    email_sql,
    junk_sql,
    key_kind,
    normalise_sql,
    phone_digits_sql,
    phone_map_phonenumbers,
    phone_sql,
)

__all__ = ["KeyOptions", "keys_sql", "make_exclusions"]

q = quote_ident


@dataclass(frozen=True)
class KeyOptions:
    """How keys are normalised and which values never link (the cascade's parameters)."""

    email_canonical: bool = False
    phone_region: str = "US"
    phone_method: str = "sql"
    exclude_junk: bool = False
    exclude_values: Mapping[str, Sequence[str]] | None = None


def _exclusions_table(ctx: MatchContext) -> str:
    return ctx.temp_name("exclude")


def make_exclusions(ctx: MatchContext, columns: list[str], options: KeyOptions) -> None:
    """Store the ``exclude_values`` of ``columns``, normalised, as ``(col, v)`` rows."""
    if not options.exclude_values:
        return
    table = _exclusions_table(ctx)
    execute(
        ctx.engine,
        f"CREATE OR REPLACE TEMP TABLE {q(table)} (col VARCHAR, v VARCHAR)",
        step="exclusions",
    )
    for col, values in options.exclude_values.items():
        if col not in columns:
            continue
        vals = [values] if isinstance(values, str) else [str(v) for v in values]
        norm = normalise_sql(
            col,
            expr="raw",
            email_canonical=options.email_canonical,
            phone_region=options.phone_region,
        )
        if key_kind(col) == "date":
            norm = "CAST(" + norm + " AS VARCHAR)"
        if not vals:
            continue
        rows = ", ".join(f"({literal(v)})" for v in vals)
        execute(
            ctx.engine,
            f"INSERT INTO {q(table)} SELECT {literal(col)}, CAST({norm} AS VARCHAR) "
            f"FROM (VALUES {rows}) AS t(raw)",
            step="exclusions",
        )


def _normalised(
    ctx: MatchContext, columns: list[str], options: KeyOptions
) -> tuple[dict[str, str], str, str]:
    """Normalising expressions per column over ``r``, the inner columns they read, joins.

    Returns ``(expressions, inner_extra, phone_join)``: phone digits and e-mail bases
    are computed once, in an inner projection (``inner_extra``); ``phonenumbers`` maps
    are joined on the raw value (``phone_join``).
    """
    recs = q(ctx.records)
    inner_extra = ""
    phone_join = ""
    exprs: dict[str, str] = {}
    for col in columns:
        if key_kind(col) == "phone" and options.phone_method == "phonenumbers":
            if ctx.engine_kind != "duckdb":
                msg = f"phone_method='phonenumbers' runs on DuckDB only (engine {ctx.engine_kind})"
                raise UnsupportedInput(msg)
            pmap = ctx.temp_name(f"phone_map_{len(exprs)}")
            phone_map_phonenumbers(
                ctx.con, f"SELECT {q(col)} FROM {recs}", pmap, region=options.phone_region
            )
            alias = f"pm{len(exprs)}"
            phone_join += (
                f" LEFT JOIN {q(pmap)} {alias} ON {alias}.raw = CAST(r.{q(col)} AS VARCHAR)"
            )
            exprs[col] = f"{alias}.e164"
        elif key_kind(col) == "phone":
            digits = f"__digits_{len(exprs)}"
            inner_extra += f", {phone_digits_sql(q(col))} AS {q(digits)}"
            exprs[col] = phone_sql(f"r.{q(col)}", region=options.phone_region, digits=q(digits))
        elif key_kind(col) == "email":
            base = f"__base_{len(exprs)}"
            inner_extra += f", {email_base_sql(q(col))} AS {q(base)}"
            exprs[col] = email_sql(
                f"r.{q(col)}", canonical=options.email_canonical, base=f"r.{q(base)}"
            )
        else:
            exprs[col] = normalise_sql(
                col,
                expr=f"r.{q(col)}",
                email_canonical=options.email_canonical,
                phone_region=options.phone_region,
            )
    return exprs, inner_extra, phone_join


def _excluded(ctx: MatchContext, columns: list[str], options: KeyOptions) -> list[str]:
    """Outer projection of the keys: each column, NULL where its value is excluded."""
    excl_table = _exclusions_table(ctx)
    have_excl = bool(options.exclude_values)
    outer = []
    for col in columns:
        k = q(col)
        tests = []
        if options.exclude_junk and (junk := junk_sql(col, k)) is not None:
            tests.append(junk)
        if have_excl and col in options.exclude_values:
            tests.append(f"{k} IN (SELECT v FROM {q(excl_table)} WHERE col = {literal(col)})")
        if tests:
            outer.append(f"CASE WHEN {' OR '.join(tests)} THEN NULL ELSE {k} END AS {k}")
        else:
            outer.append(k)
    return outer


def keys_sql(
    ctx: MatchContext,
    columns: list[str],
    options: KeyOptions,
    *,
    with_ts: bool,
    where: str | None = None,
) -> str:
    """SELECT of ``record_id``, [``ts``] and one normalised column per key column.

    ``where`` filters the raw records before anything is normalised (e.g. "the rule's
    columns are present": normalising can turn a value into NULL, never the reverse, so
    a presence filter on the raw columns loses no key).
    """
    exprs, inner_extra, phone_join = _normalised(ctx, columns, options)
    recs = q(ctx.records)
    cond = f" WHERE {where}" if where else ""
    wrap = inner_extra or cond
    source = f"(SELECT *{inner_extra} FROM {recs}{cond}) r" if wrap else f"{recs} r"
    outer = _excluded(ctx, columns, options)
    ts = ", ts" if with_ts else ""
    inner_cols = ", ".join(f"{e} AS {q(c)}" for c, e in exprs.items())
    inner_ts = ", r.ts" if with_ts else ""
    return (
        f"SELECT record_id{ts}, {', '.join(outer)} FROM ("
        f"SELECT r.record_id{inner_ts}, {inner_cols} FROM {source}{phone_join})"
    )
