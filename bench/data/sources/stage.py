"""Stage the input files of a recipe in DuckDB and check the staged records.

Each file is read with an explicit dialect into its own table; the mapped columns are
trimmed (empty strings become NULL), typed and combined into one ``stage`` table. Errors
name the file, the position in it (:func:`position`: the line of a CSV file, the row of
a Parquet file) and what to change in the recipe.
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
#: Row number of each input row (1-based), kept for the positions quoted in error messages.
ROW = "__idbench_row"
SHOW = 5  # how many offending ids an error message names
#: Column types whose values may be NaN or infinite.
_FLOATS = {"FLOAT", "DOUBLE", "REAL"}
#: Where a diagnostic re-read of a malformed CSV file stores the rows it could not read.
_REJECTS = "__idbench_rejects"


def position(fmt: str, row: int) -> str:
    """Where data row ``row`` (1-based, as in :data:`ROW`) of an input file is.

    ``line <row + 1>`` in a CSV file, whose header is line 1 (a quoted value spanning
    lines counts as one); ``row <row>`` in a Parquet file, which has no lines.
    """
    return f"line {row + 1}" if fmt == "csv" else f"row {row}"


def _reader(path: Path, fmt: str, encoding: str, delimiter: str, rejects: bool = False) -> str:
    """The table function reading an input file; ``rejects`` keeps the rows it cannot read.

    With ``rejects``, the rows it cannot read (e.g. with the wrong number of fields) go
    to the table :data:`_REJECTS` (line, error type, the row as written) instead of
    failing the read.
    """
    if fmt == "parquet":
        return f"read_parquet({literal(path)})"
    # Explicit dialect: the sniffer silently reads a ragged or ';'-separated file as one
    # column, which would surface later as a confusing "missing column" error.
    keep = (
        f", store_rejects = true, rejects_table = {literal(_REJECTS)}, "
        f"rejects_scan = {literal(_REJECTS + '_scans')}"
        if rejects
        else ""
    )
    return (
        f"read_csv({literal(path)}, header = true, all_varchar = true, "
        f"delim = {literal(delimiter)}, quote = '\"', escape = '\"', "
        f"encoding = {literal(encoding)}, strict_mode = true{keep})"
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
        ragged = _ragged_row(con, path, encoding, delimiter) if fmt == "csv" else None
        raise _read_error(exc, display, fmt, encoding, ragged) from exc
    n = engine.query_one(con, f"SELECT count(*) AS n FROM {quote_ident(table)}")["n"]
    if n == 0:
        msg = f"file {display}: no data rows (a header line, then one line per record)"
        raise FileDataError(msg)
    cols = engine.table_columns(con, table)
    cols.pop(ROW)
    return cols


def _ragged_row(
    con: duckdb.DuckDBPyConnection, path: Path, encoding: str, delimiter: str
) -> dict[str, Any] | None:
    """The first row of a CSV file with more or fewer fields than its header, if any.

    Keys ``line``, ``expected``, ``found``, ``text`` (the row as written) and ``n`` (how
    many rows are ragged). ``None`` when every row has the header's number of fields, or
    when the file cannot be read even leaving such rows out (then the read's own error
    is the better message).
    """
    try:
        engine.query(
            con,
            f"SELECT count(*) FROM {_reader(path, 'csv', encoding, delimiter, rejects=True)}",
            step="find the malformed row",
        )
        rows = engine.query(
            con,
            "SELECT line, error_message, csv_line AS text, count(*) OVER () AS n "
            f"FROM {_REJECTS} WHERE error_type IN ('TOO MANY COLUMNS', 'MISSING COLUMNS') "
            "ORDER BY line LIMIT 1",
            step="find the malformed row",
        ).to_pylist()
    except engine.SQLError:
        return None
    counts = (
        re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", rows[0]["error_message"])
        if rows
        else None
    )
    if counts is None:
        return None
    return {**rows[0], "expected": int(counts.group(1)), "found": int(counts.group(2))}


def _read_error(
    exc: engine.SQLError,
    display: str,
    fmt: str,
    encoding: str,
    ragged: dict[str, Any] | None,
) -> FileDataError:
    """The error for an input file that cannot be read; ``ragged``: from :func:`_ragged_row`."""
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
    if ragged is not None:
        shown = ragged["text"] if len(ragged["text"]) <= 80 else ragged["text"][:77] + "..."
        more = f" ({ragged['n']} such rows in all)" if ragged["n"] > 1 else ""
        msg = (
            f"file {display} (line {ragged['line']}): expected {ragged['expected']} fields "
            f"(as many as the header has), found {ragged['found']}{more}: {shown!r}. Give "
            "every row the header's fields: quote values that contain the delimiter, close "
            'quotes, and check the delimiter (e.g. delimiter = ";" for a semicolon-separated '
            "file)"
        )
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
        if f.truth_column and have[f.truth_column] in _FLOATS:
            _check_finite_truth(con, table, f)
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


def _check_finite_truth(con: duckdb.DuckDBPyConnection, table: str, f: FileSpec) -> None:
    """Refuse NaN and infinite values of a floating-point truth column, like empty ones.

    Read as text, every NaN would be the one entity ``'nan'``, joining strangers.
    """
    truth = quote_ident(f.truth_column or "")
    bad = engine.query(
        con,
        f"SELECT {ROW} AS row, {text(f.id_column)} AS orig_id, count(*) OVER () AS n "
        f"FROM {quote_ident(table)} WHERE NOT isfinite({truth}) ORDER BY {ROW} LIMIT {SHOW}",
        step=f"check truth values of {f.display}",
    ).to_pylist()
    if bad:
        msg = (
            f"file {f.display}: {bad[0]['n']} record(s) have a NaN or infinite value in column "
            f"{f.truth_column!r} (truth_column; give singletons their own entity), e.g. "
            + examples(at_positions(bad, f.format), "{orig_id!r} ({at})")
        )
        raise FileDataError(msg)


def at_positions(rows: list[dict[str, Any]], fmt: str) -> list[dict[str, Any]]:
    """``rows`` with ``at``: the :func:`position` of their ``row`` in a ``fmt`` file."""
    return [{**r, "at": position(fmt, r["row"])} for r in rows]


def _places(spec: FileRecipe, files: list[int], rows: list[int]) -> str:
    """Where the occurrences (file number, row) of one id are, the files named if several."""
    named = len(set(files)) > 1
    shown = [
        (f"{spec.files[i].display} " if named else "") + position(spec.files[i].format, row)
        for i, row in zip(files[:3], rows[:3], strict=True)
    ]
    return ", ".join(shown) + (", ..." if len(files) > 3 else "")


def check_ids(con: duckdb.DuckDBPyConnection, spec: FileRecipe) -> None:
    """Refuse records without an id, and ids that occur more than once in a source."""
    nulls = engine.query(
        con,
        "SELECT __file, count(*) AS n, min(__row) AS row FROM stage "
        "WHERE orig_id IS NULL GROUP BY __file ORDER BY __file LIMIT 1",
        step="check for empty ids",
    ).to_pylist()
    if nulls:
        r = nulls[0]
        f = spec.files[r["__file"]]
        msg = (
            f"file {f.display}: {r['n']} row(s) have an empty id in column {f.id_column!r} "
            f"(first at {position(f.format, r['row'])}); every record needs a unique id"
        )
        raise FileDataError(msg)
    # The examples come from one source, the first with a duplicate, which the message names.
    dups = engine.query(
        con,
        "WITH d AS (SELECT source, orig_id, count(*) AS n, "
        "list(__file ORDER BY __file, __row) AS files, list(__row ORDER BY __file, __row) AS rows "
        "FROM stage GROUP BY source, orig_id HAVING count(*) > 1) "
        "SELECT *, count(*) OVER () AS total FROM d WHERE source = (SELECT min(source) FROM d) "
        f"ORDER BY orig_id LIMIT {SHOW}",
        step="check for duplicate ids",
    ).to_pylist()
    if dups:
        files = [spec.files[i].display for i in sorted({i for r in dups for i in r["files"]})]
        for r in dups:
            r["places"] = _places(spec, r["files"], r["rows"])
        msg = (
            f"file {', '.join(files)}: {dups[0]['total']} id(s) occur more than once in "
            f"source {dups[0]['source']!r}, e.g. "
            + examples(dups, "{orig_id!r} ({n} times: {places})")
            + "; ids must be unique within a source (give the files different sources if "
            "they are different systems)"
        )
        raise FileDataError(msg)


def _first_invalid(con: duckdb.DuckDBPyConnection, spec: FileRecipe, target: str) -> str:
    """The first value mapped to ``target`` that did not parse, and where it is."""
    raw = quote_ident(f"__raw_{target}")
    r = engine.query_one(
        con,
        f"SELECT __file, __row AS row, {raw} AS value FROM stage "
        f"WHERE {raw} IS NOT NULL AND {quote_ident(target)} IS NULL ORDER BY __file, __row LIMIT 1",
        step=f"find an invalid {target} value",
    )
    f = spec.files[r["__file"]]
    return f"{r['value']!r} ({f.display} {position(f.format, r['row'])})"


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
            "AS bad FROM stage",
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
                f"could be read, e.g. {_first_invalid(con, spec, t)}; check {hint}"
            )
            raise FileDataError(msg)
        if r["bad"]:
            log.warning(
                "dataset %s: %d of %d %s values are invalid and set to NULL, e.g. %s",
                spec.name,
                r["bad"],
                r["given"],
                t,
                _first_invalid(con, spec, t),
            )
