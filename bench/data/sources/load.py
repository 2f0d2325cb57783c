"""Convert a validated file recipe into the dataset layout (docs/dataset-layout.md).

Everything runs in DuckDB through :mod:`bench.sql.engine`; no Python loop touches rows.

* ``record_id`` is the rank of ``md5(source, orig_id)``: deterministic, independent of
  the row order of the input files, and uncorrelated with the entity (FEBRL's ids put
  ``rec-7-org`` next to ``rec-7-dup-0``; sorting by them would leak the answer to a
  matcher that compares neighbouring ids).
* String values are trimmed; empty strings become NULL.
* ``person_id`` is the entity value itself when every value is an integer, otherwise the
  rank of the value; with a links file it is the smallest ``record_id`` of the connected
  component. ``household_id`` is NULL.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from bench.data.dataset import Dataset, DatasetError, fingerprint, write_manifest
from bench.data.sources.recipe import (
    CANONICAL_COLUMNS,
    FileDataError,
    FileRecipe,
    LinksSpec,
    bundled_dir,
    describe,
    load_recipe,
)
from bench.sql import engine
from bench.sql.engine import literal, quote_ident
from bench.sql.graph import connected_components

__all__ = ["GENERATOR", "build", "default_out", "folder_name", "prepare"]

log = logging.getLogger(__name__)

#: Bump when the conversion changes its output, so existing datasets are rebuilt.
GENERATOR = {"name": "idbench.sources", "version": "1"}
_TYPES = {"dob": "DATE", "ts": "TIMESTAMP", "amount": "DOUBLE"}
_ROW = "__idbench_row"
_SHOW = 5  # how many offending ids an error message names


def default_out(name: str) -> Path:
    """Where :func:`prepare` writes a dataset by default: ``datasets/generated/<name>``."""
    return Path("datasets") / "generated" / name


def folder_name(spec: FileRecipe, desc: dict[str, Any]) -> str:
    """Directory name under ``datasets/generated`` of a recipe's dataset.

    A bundled recipe (``febrl1`` .. ``febrl4``) keeps its plain name. A recipe file of
    your own gets ``<name>-r<hash>``, the hash taken over its source description
    (:func:`~bench.data.sources.recipe.describe`: every resolved option and the SHA-256 of
    every input file). The ``name`` is free, so two different recipes (``/a/shop.toml``
    and ``/b/shop.toml``) may share it; by name alone they would rebuild one directory
    in turn, and a suite naming both would run the first recipe's matchers on the second
    one's data. Content-addressed, different recipes or inputs never share a directory,
    the same recipe used again reuses its own, and a dataset stays in place for the runs
    stored against it when its inputs change (the new version goes to a new directory).
    Paths are hashed as written, so moving a project folder does not force a rebuild.
    """
    if spec.recipe_path.resolve().parent == bundled_dir().resolve():
        return spec.name
    text = json.dumps(desc, sort_keys=True, separators=(",", ":"), default=str)
    return f"{spec.name}-r{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def prepare(recipe: str | Path, *, out: Path | None = None) -> Path:
    """Build the dataset of a file or FEBRL recipe, or reuse it if nothing changed.

    Parameters
    ----------
    recipe
        Path of a recipe TOML, or a bundled recipe name such as ``"febrl1"``.
    out
        Dataset directory; default ``datasets/generated/<folder>`` (relative to the
        working directory), ``<folder>`` from :func:`folder_name`: the recipe's name
        for a bundled recipe, plus a hash of the recipe and its inputs for your own
        recipe files. An existing dataset there is reused when its manifest's
        source description (resolved recipe + SHA-256 of every input) and generator are
        unchanged and its files still match the fingerprint; otherwise it is replaced.

    Returns
    -------
    Path
        The dataset directory, ready for :meth:`bench.data.dataset.Dataset.open`.

    Raises
    ------
    FileDataError
        For any problem with the recipe or its files, saying where and what to do.
    """
    spec = load_recipe(recipe)
    desc = describe(spec)
    out = Path(out) if out is not None else default_out(folder_name(spec, desc))
    if _reusable(out, desc):
        log.info("dataset %s: up to date in %s", spec.name, out)
        return out
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())
    ):
        msg = (
            f"dataset {spec.name}: {out} exists and is not an idbench dataset; "
            "choose another output directory or remove it"
        )
        raise FileDataError(msg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        stats = build(spec, tmp)
        write_manifest(
            tmp,
            name=spec.name,
            kind=spec.kind,
            recipe=desc,
            seed=None,
            generator=dict(GENERATOR),
            extra={"truth_summary": stats},
        )
        # Swap in the new directory; a reader never sees a half-written dataset.
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("dataset %s: written to %s (%s)", spec.name, out, stats)
    return out


def _reusable(out: Path, desc: dict[str, Any]) -> bool:
    mpath = out / "manifest.json"
    if not mpath.is_file():
        return False
    try:
        ds = Dataset.open(out)
    except DatasetError as exc:
        log.info("rebuilding %s: %s", out, exc)
        return False
    m = ds.manifest
    return (
        m.get("recipe") == desc
        and m.get("generator") == GENERATOR
        and fingerprint(out) == ds.fingerprint
    )


# -- reading files ------------------------------------------------------------------------


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


def _load_table(
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
        f"SELECT row_number() OVER () AS {_ROW}, * FROM {_reader(path, fmt, encoding, delimiter)}"
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
    cols.pop(_ROW)
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


def _missing_columns(display: str, have: dict[str, str], need: dict[str, str]) -> None:
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


def _text(col: str) -> str:
    return f"NULLIF(TRIM(CAST({quote_ident(col)} AS VARCHAR)), '')"


def _typed(col: str, sql_type: str, target: str, spec: FileRecipe) -> str:
    """Expression converting a user column to the type of an idbench column."""
    if sql_type.startswith(("DATE", "TIMESTAMP")) or (
        target == "amount" and sql_type in {"DOUBLE", "FLOAT", "INTEGER", "BIGINT", "DECIMAL"}
    ):
        return f"TRY_CAST({quote_ident(col)} AS {_TYPES[target]})"
    if target == "dob":
        return f"CAST(try_strptime({_text(col)}, {literal(spec.date_format)}) AS DATE)"
    if target == "ts" and spec.timestamp_format:
        return f"try_strptime({_text(col)}, {literal(spec.timestamp_format)})"
    return f"TRY_CAST({_text(col)} AS {_TYPES[target]})"


# -- building -----------------------------------------------------------------------------


def build(spec: FileRecipe, out: Path) -> dict[str, Any]:
    """Write ``records.parquet`` and ``truth/records.parquet`` of ``spec`` into ``out``.

    Returns
    -------
    dict
        Summary of the truth: records, entities, true pairs, records per source.
    """
    con = engine.connect()
    try:
        # Only for the row numbers quoted in error messages: keep file order on reading.
        engine.execute(con, "SET preserve_insertion_order = true")
        return _build(con, spec, out)
    finally:
        con.close()


def _build(con: duckdb.DuckDBPyConnection, spec: FileRecipe, out: Path) -> dict[str, Any]:
    targets = spec.targets
    selects = []
    for i, f in enumerate(spec.files):
        table = f"src_{i}"
        have = _load_table(con, table, f.path, f.display, f.format, f.encoding, f.delimiter)
        need = {f.id_column: "id_column"}
        if f.truth_column:
            need[f.truth_column] = "truth_column"
        need |= {user: f"mapped to {target}" for user, target in f.columns.items()}
        _missing_columns(f.display, have, need)
        by_target = {t: u for u, t in f.columns.items()}
        cols = [
            f"{i} AS __file",
            f"{_ROW} AS __row",
            f"{literal(f.source)} AS source",
            f"{_text(f.id_column)} AS orig_id",
            (
                f"{_text(f.truth_column)} AS __truth"
                if f.truth_column
                else "CAST(NULL AS VARCHAR) AS __truth"
            ),
        ]
        for t in targets:
            user = by_target.get(t)
            if user is None:
                cols.append(f"CAST(NULL AS {_TYPES.get(t, 'VARCHAR')}) AS {quote_ident(t)}")
            elif t in _TYPES:
                cols.append(f"{_typed(user, have[user], t, spec)} AS {quote_ident(t)}")
                cols.append(f"{_text(user)} AS {quote_ident('__raw_' + t)}")
            else:
                cols.append(f"{_text(user)} AS {quote_ident(t)}")
        selects.append(f"SELECT {', '.join(cols)} FROM {table}")
    engine.execute(
        con,
        "CREATE TABLE stage AS " + " UNION ALL BY NAME ".join(selects),
        step="combine input files",
    )
    _check_ids(con, spec)
    _check_typed(con, spec, targets)
    engine.execute(
        con,
        "CREATE TABLE recs AS SELECT CAST(row_number() OVER ("
        "ORDER BY md5(source || chr(0) || orig_id), source, orig_id) AS BIGINT) AS record_id, "
        "* FROM stage",
        step="assign record ids",
    )
    if spec.links is not None:
        _truth_from_links(con, spec, spec.links)
    else:
        _truth_from_values(con, spec)

    out.mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    attrs = "".join(f", {quote_ident(t)}" for t in targets)
    engine.write_parquet(
        con,
        f"SELECT record_id, source, orig_id{attrs} FROM recs ORDER BY record_id",
        out / "records.parquet",
        step="write records",
    )
    engine.write_parquet(
        con,
        "SELECT record_id, person_id, CAST(NULL AS BIGINT) AS household_id "
        "FROM truth ORDER BY record_id",
        out / "truth" / "records.parquet",
        step="write truth",
    )
    stats = engine.query_one(
        con,
        "SELECT CAST(sum(n) AS BIGINT) AS records, count(*) AS entities, "
        "CAST(sum(n * (n - 1) / 2) AS BIGINT) AS true_pairs "
        "FROM (SELECT person_id, count(*) AS n FROM truth GROUP BY person_id)",
        step="truth summary",
    )
    per_source = engine.query(
        con, "SELECT source, count(*) AS n FROM recs GROUP BY source ORDER BY source"
    ).to_pylist()
    stats["sources"] = {r["source"]: r["n"] for r in per_source}
    unknown = [t for t in targets if t not in CANONICAL_COLUMNS]
    if unknown:
        log.info("dataset %s: extra columns kept as VARCHAR: %s", spec.name, ", ".join(unknown))
    return stats


def _examples(rows: list[dict[str, Any]], fmt: str) -> str:
    return "; ".join(fmt.format(**r) for r in rows[:_SHOW])


def _check_ids(con: duckdb.DuckDBPyConnection, spec: FileRecipe) -> None:
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
        f"ORDER BY source, orig_id LIMIT {_SHOW}",
        step="check for duplicate ids",
    ).to_pylist()
    if dups:
        files = [spec.files[i].display for i in sorted({i for r in dups for i in r["files"]})]
        msg = (
            f"file {', '.join(files)}: {dups[0]['total']} id(s) occur more than once in "
            f"source {dups[0]['source']!r}, e.g. "
            + _examples(dups, "{orig_id!r} ({n} times)")
            + "; ids must be unique within a source (give the files different sources if "
            "they are different systems)"
        )
        raise FileDataError(msg)


def _check_typed(con: duckdb.DuckDBPyConnection, spec: FileRecipe, targets: list[str]) -> None:
    """Fail when no value of a typed column parses; log how many did not."""
    typed = [t for t in targets if t in _TYPES]
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


def _entity_to_person(con: duckdb.DuckDBPyConnection, step: str) -> None:
    """Create ``truth`` from ``ent(record_id, entity VARCHAR)``."""
    all_int = engine.query_one(
        con,
        "SELECT bool_and(TRY_CAST(entity AS BIGINT) IS NOT NULL) AS ok FROM ent",
        step=step,
    )["ok"]
    expr = (
        "CAST(entity AS BIGINT)"
        if all_int
        else "CAST(dense_rank() OVER (ORDER BY entity) AS BIGINT)"
    )
    engine.execute(
        con, f"CREATE TABLE truth AS SELECT record_id, {expr} AS person_id FROM ent", step=step
    )


def _truth_from_values(con: duckdb.DuckDBPyConnection, spec: FileRecipe) -> None:
    if spec.truth_pattern is not None:
        engine.execute(
            con,
            "CREATE TABLE ent AS SELECT record_id, __file, __row, orig_id, "
            f"NULLIF(regexp_extract(orig_id, {literal(spec.truth_pattern)}, 1), '') AS entity "
            "FROM recs",
            step="apply truth_pattern",
        )
        what = f"do not match truth_pattern '{spec.truth_pattern}'"
    else:
        engine.execute(
            con,
            "CREATE TABLE ent AS SELECT record_id, __file, __row, orig_id, __truth AS entity "
            "FROM recs",
            step="read truth column",
        )
        what = "have an empty truth_column value (give singletons their own entity)"
    bad = engine.query(
        con,
        "SELECT __file, orig_id, __row + 1 AS line, count(*) OVER () AS n "
        f"FROM ent WHERE entity IS NULL ORDER BY __file, __row LIMIT {_SHOW}",
        step="check truth",
    ).to_pylist()
    if bad:
        msg = (
            f"file {spec.files[bad[0]['__file']].display}: {bad[0]['n']} record(s) {what}, e.g. "
            + _examples(bad, "{orig_id!r} (line {line})")
        )
        raise FileDataError(msg)
    _entity_to_person(con, "truth to person ids")


def _truth_from_links(con: duckdb.DuckDBPyConnection, spec: FileRecipe, lk: LinksSpec) -> None:
    have = _load_table(con, "links_raw", lk.path, lk.display, lk.format, lk.encoding, lk.delimiter)
    _missing_columns(
        lk.display, have, {lk.left: "links.left: first id", lk.right: "links.right: second id"}
    )
    sides = []
    for side, col, src in (("l", lk.left, lk.left_source), ("r", lk.right, lk.right_source)):
        on = "r.orig_id = k.id" + (f" AND r.source = {literal(src)}" if src else "")
        engine.execute(
            con,
            f"CREATE TABLE link_{side} AS SELECT k.{_ROW} AS row, k.id, "
            "count(r.record_id) AS hits, min(r.record_id) AS record_id, "
            "list(DISTINCT r.source ORDER BY r.source) AS sources "
            f"FROM (SELECT {_ROW}, {_text(col)} AS id FROM links_raw) k "
            f"LEFT JOIN recs r ON {on} GROUP BY k.{_ROW}, k.id",
            step="resolve links",
        )
        sides.append((side, col, src))
    for side, col, src in sides:
        empty = engine.query(
            con,
            f"SELECT row + 1 AS line FROM link_{side} WHERE id IS NULL ORDER BY row LIMIT 1",
        ).to_pylist()
        if empty:
            msg = f"links file {lk.display} (line {empty[0]['line']}): column {col!r} is empty"
            raise FileDataError(msg)
        unknown = engine.query(
            con,
            f"SELECT id, row + 1 AS line, count(*) OVER () AS n FROM link_{side} "
            f"WHERE hits = 0 ORDER BY row LIMIT {_SHOW}",
        ).to_pylist()
        if unknown:
            scope = f"source {src!r}" if src else "any file"
            msg = (
                f"links file {lk.display}: {unknown[0]['n']} id(s) in column {col!r} are not "
                f"ids of records in {scope}, e.g. "
                + _examples(unknown, "{id!r} (line {line})")
                + "; check the links match id_column"
                + ("" if src else " (or set links.left_source / links.right_source)")
            )
            raise FileDataError(msg)
        ambiguous = engine.query(
            con,
            f"SELECT id, sources FROM link_{side} WHERE hits > 1 ORDER BY row LIMIT {_SHOW}",
        ).to_pylist()
        if ambiguous:
            r = ambiguous[0]
            msg = (
                f"links file {lk.display}: id {r['id']!r} in column {col!r} is an id in "
                f"several sources ({', '.join(r['sources'])}); set links.{'left' if side == 'l' else 'right'}_source "
                "to say which source the ids in that column belong to"
            )
            raise FileDataError(msg)
    engine.execute(
        con,
        "CREATE TABLE edges AS SELECT l.record_id AS a, r.record_id AS b "
        "FROM link_l l JOIN link_r r USING (row) WHERE l.record_id <> r.record_id",
        step="links to edges",
    )
    # The label is the smallest record_id of the component; the table holds only the
    # records whose label differs from their own id, so every other record is its own
    # entity.
    cc = connected_components(con, "SELECT a, b FROM edges", lambda name: f"truth_{name}")
    engine.execute(
        con,
        "CREATE TABLE ent AS SELECT r.record_id, "
        "CAST(coalesce(c.label, r.record_id) AS VARCHAR) AS entity "
        f"FROM recs r LEFT JOIN {quote_ident(cc.table)} c ON c.node = r.record_id",
        step="components to entities",
    )
    _entity_to_person(con, "components to person ids")
