"""Stage the input files of a recipe in DuckDB and check the staged records.

Each file is read with an explicit dialect into its own table; the mapped columns are
trimmed (empty strings become NULL), typed and combined into one ``stage`` table. Errors
name the file, the line and what to change in the recipe.
"""

from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path
from typing import Any

import duckdb

from bench.data.sources.spec import FileDataError, FileRecipe, FileSpec
from bench.sql import engine
from bench.sql.engine import literal, quote_ident

log = logging.getLogger(__name__)

#: idbench columns with a type other than VARCHAR.
TYPES = {"dob": "DATE", "ts": "TIMESTAMP", "amount": "DOUBLE"}
#: Row number of each input row, kept for the line numbers quoted in error messages.
ROW = "__idbench_row"
SHOW = 5  # how many offending ids an error message names


def _reader(path: Path, fmt: str, encoding: str, delimiter: str) -> str:
    if fmt == "parquet":
        return f"read_parquet({literal(path)})"
    # Explicit dialect: the sniffer silently reads a ragged or ';'-separated file as one
    # column, which would surface later as a confusing "missing column" error.
    return (
        f"read_csv({literal(path)}, header = true, all_varchar = true, "
        f"delim = {literal(delimiter)}, quote = '\"', escape = '\"', "
        f"encoding = {literal(encoding)}, strict_mode = true)"
    )


def load_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    display: str,
    fmt: str,
    encoding: str,
    delimiter: str,
) -> dict[str, str]:
    """Read one input file into ``table`` (plus a row number); return its columns."""
    sql = (
        f"CREATE TABLE {quote_ident(table)} AS "
        f"SELECT row_number() OVER () AS {ROW}, * FROM {_reader(path, fmt, encoding, delimiter)}"
    )
    try:
        engine.execute(con, sql, step=f"read {display}")
    except engine.SQLError as exc:
        raise _read_error(exc, display, fmt, encoding) from exc
    n = engine.query_one(con, f"SELECT count(*) AS n FROM {quote_ident(table)}")["n"]
    if n == 0:
        msg = f"file {display}: no data rows (a header line, then one line per record)"
        raise FileDataError(msg)
    cols = engine.table_columns(con, table)
    cols.pop(ROW)
    return cols


def _read_error(exc: engine.SQLError, display: str, fmt: str, encoding: str) -> FileDataError:
    text = str(exc.__cause__ or exc)
    line = re.search(r"Line: (\d+)", text)
    at = f" (line {line.group(1)})" if line else ""
    if "unicode" in text.lower() or "not utf-8 encoded" in text.lower() or "not utf-16" in text:
        other = "latin-1" if encoding != "latin-1" else "utf-8"
        msg = (
            f"file {display}{at}: not valid {encoding} text. If it was saved by Excel or "
            f'another Windows program, add encoding = "{other}" to its [[files]] table '
            "(or convert it to UTF-8)"
        )
        return FileDataError(msg)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if fmt == "parquet":
        msg = f"file {display}: cannot be read as Parquet ({first}); is it really a Parquet file?"
        return FileDataError(msg)
    msg = (
        f"file {display}{at}: cannot be parsed as CSV ({first}). Check that every row has "
        "the same number of fields, that quotes are closed, and that the delimiter is right "
        '(e.g. delimiter = ";" for a semicolon-separated file)'
    )
    return FileDataError(msg)


def missing_columns(display: str, have: dict[str, str], need: dict[str, str]) -> None:
    """Raise for the first needed column not in the file; ``need``: column -> role."""
    for col, role in need.items():
        if col in have:
            continue
        names = list(have)
        hint = ""
        close = difflib.get_close_matches(col, names, n=3, cutoff=0.6)
        ci = [n for n in names if n.lower() == col.lower()]
        if ci:
            close = ci
        if close:
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?"
        elif len(names) == 1 and any(d in names[0] for d in ";\t|"):
            hint = '; the header was read as one column: set the delimiter (e.g. delimiter = ";")'
        msg = (
            f"file {display}: no column {col!r} ({role}){hint}. "
            f"Columns in the file: {', '.join(names)}"
        )
        raise FileDataError(msg)


def text(col: str) -> str:
    return f"NULLIF(TRIM(CAST({quote_ident(col)} AS VARCHAR)), '')"


def _typed(col: str, sql_type: str, target: str, spec: FileRecipe) -> str:
    """Expression converting a user column to the type of an idbench column."""
    if sql_type.startswith(("DATE", "TIMESTAMP")) or (
        target == "amount" and sql_type in {"DOUBLE", "FLOAT", "INTEGER", "BIGINT", "DECIMAL"}
    ):
        return f"TRY_CAST({quote_ident(col)} AS {TYPES[target]})"
    if target == "dob":
        return f"CAST(try_strptime({text(col)}, {literal(spec.date_format)}) AS DATE)"
    if target == "ts" and spec.timestamp_format:
        return f"try_strptime({text(col)}, {literal(spec.timestamp_format)})"
    return f"TRY_CAST({text(col)} AS {TYPES[target]})"


def stage_files(con: duckdb.DuckDBPyConnection, spec: FileRecipe, targets: list[str]) -> None:
    """Read every input file and combine them into the table ``stage``.

    ``stage`` has ``__file``, ``__row``, ``source``, ``orig_id``, ``__truth``, one column
    per target (typed) and ``__raw_<target>`` (the text) of each typed target.
    """
    selects = []
    for i, f in enumerate(spec.files):
        table = f"src_{i}"
        have = load_table(con, table, f.path, f.display, f.format, f.encoding, f.delimiter)
        need = {f.id_column: "id_column"}
        if f.truth_column:
            need[f.truth_column] = "truth_column"
        need |= {user: f"mapped to {target}" for user, target in f.columns.items()}
        missing_columns(f.display, have, need)
        selects.append(
            f"SELECT {', '.join(_stage_columns(i, f, have, spec, targets))} FROM {table}"
        )
    engine.execute(
        con,
        "CREATE TABLE stage AS " + " UNION ALL BY NAME ".join(selects),
        step="combine input files",
    )


def _stage_columns(
    i: int, f: FileSpec, have: dict[str, str], spec: FileRecipe, targets: list[str]
) -> list[str]:
    """The SELECT list staging input file number ``i`` (columns ``have``: name -> type)."""
    by_target = {t: u for u, t in f.columns.items()}
    cols = [
        f"{i} AS __file",
        f"{ROW} AS __row",
        f"{literal(f.source)} AS source",
        f"{text(f.id_column)} AS orig_id",
        (
            f"{text(f.truth_column)} AS __truth"
            if f.truth_column
            else "CAST(NULL AS VARCHAR) AS __truth"
        ),
    ]
    for t in targets:
        user = by_target.get(t)
        if user is None:
            cols.append(f"CAST(NULL AS {TYPES.get(t, 'VARCHAR')}) AS {quote_ident(t)}")
        elif t in TYPES:
            cols.append(f"{_typed(user, have[user], t, spec)} AS {quote_ident(t)}")
            cols.append(f"{text(user)} AS {quote_ident('__raw_' + t)}")
        else:
            cols.append(f"{text(user)} AS {quote_ident(t)}")
    return cols


def examples(rows: list[dict[str, Any]], fmt: str) -> str:
    return "; ".join(fmt.format(**r) for r in rows[:SHOW])


def check_ids(con: duckdb.DuckDBPyConnection, spec: FileRecipe) -> None:
    nulls = engine.query(
        con,
        "SELECT __file, count(*) AS n, min(__row) + 1 AS line FROM stage "
        "WHERE orig_id IS NULL GROUP BY __file ORDER BY __file LIMIT 1",
        step="check for empty ids",
    ).to_pylist()
    if nulls:
        r = nulls[0]
        f = spec.files[r["__file"]]
        msg = (
            f"file {f.display}: {r['n']} row(s) have an empty id in column {f.id_column!r} "
            f"(first at line {r['line']}); every record needs a unique id"
        )
        raise FileDataError(msg)
    dups = engine.query(
        con,
        "SELECT source, orig_id, count(*) AS n, list(DISTINCT __file) AS files, "
        "count(*) OVER () AS total FROM stage GROUP BY source, orig_id HAVING count(*) > 1 "
        f"ORDER BY source, orig_id LIMIT {SHOW}",
        step="check for duplicate ids",
    ).to_pylist()
    if dups:
        files = [spec.files[i].display for i in sorted({i for r in dups for i in r["files"]})]
        msg = (
            f"file {', '.join(files)}: {dups[0]['total']} id(s) occur more than once in "
            f"source {dups[0]['source']!r}, e.g. "
            + examples(dups, "{orig_id!r} ({n} times)")
            + "; ids must be unique within a source (give the files different sources if "
            "they are different systems)"
        )
        raise FileDataError(msg)


def check_typed(con: duckdb.DuckDBPyConnection, spec: FileRecipe, targets: list[str]) -> None:
    """Fail when no value of a typed column parses; log how many did not."""
    typed = [t for t in targets if t in TYPES]
    if not typed:
        return
    has_raw = set(engine.table_columns(con, "stage"))
    for t in typed:
        raw = f"__raw_{t}"
        if raw not in has_raw:
            continue
        r = engine.query_one(
            con,
            f"SELECT count({quote_ident(raw)}) AS given, "
            f"count(*) FILTER ({quote_ident(raw)} IS NOT NULL AND {quote_ident(t)} IS NULL) "
            f"AS bad, any_value({quote_ident(raw)}) FILTER ({quote_ident(t)} IS NULL) AS example "
            "FROM stage",
            step=f"check {t} values",
        )
        if r["given"] and r["bad"] == r["given"]:
            hint = {
                "dob": f"date_format (now {spec.date_format!r}, e.g. '%d/%m/%Y')",
                "ts": "timestamp_format (e.g. '%Y-%m-%d %H:%M:%S')",
                "amount": "the mapping (amount must be a number such as 12.50)",
            }[t]
            msg = (
                f"recipe {spec.recipe_path}: none of the {r['given']} values mapped to {t!r} "
                f"could be read (e.g. {r['example']!r}); check {hint}"
            )
            raise FileDataError(msg)
        if r["bad"]:
            log.warning(
                "dataset %s: %d of %d %s values are invalid and set to NULL (e.g. %r)",
                spec.name,
                r["bad"],
                r["given"],
                t,
                r["example"],
            )
