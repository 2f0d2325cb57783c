"""The truth of a file recipe: a person id per record, from values or from links.

``person_id`` is the entity value itself when every value is an integer, otherwise the
rank of the value; with a links file it is the smallest ``record_id`` of the connected
component.
"""

from __future__ import annotations

import duckdb

from bench.data.sources.spec import FileDataError, FileRecipe, LinksSpec
from bench.data.sources.stage import (
    ROW,
    SHOW,
    at_positions,
    examples,
    load_table,
    missing_columns,
    position,
    text,
)
from bench.sql import engine
from bench.sql.engine import literal, quote_ident
from bench.sql.graph import connected_components


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


def truth_from_values(con: duckdb.DuckDBPyConnection, spec: FileRecipe) -> None:
    """Create ``truth`` from the truth column or the truth pattern on the ids."""
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
    # Count and show the records of the first file with any, the file the message names.
    bad = engine.query(
        con,
        "SELECT __file, orig_id, __row AS row, count(*) OVER () AS n FROM ent "
        "WHERE entity IS NULL AND __file = (SELECT min(__file) FROM ent WHERE entity IS NULL) "
        f"ORDER BY __row LIMIT {SHOW}",
        step="check truth",
    ).to_pylist()
    if bad:
        f = spec.files[bad[0]["__file"]]
        msg = f"file {f.display}: {bad[0]['n']} record(s) {what}, e.g. " + examples(
            at_positions(bad, f.format), "{orig_id!r} ({at})"
        )
        raise FileDataError(msg)
    _entity_to_person(con, "truth to person ids")


def truth_from_links(con: duckdb.DuckDBPyConnection, spec: FileRecipe, lk: LinksSpec) -> None:
    """Create ``truth`` from a links file: the entities are its connected components."""
    have = load_table(con, "links_raw", lk.path, lk.display, lk.format, lk.encoding, lk.delimiter)
    missing_columns(
        lk.display, have, {lk.left: "links.left: first id", lk.right: "links.right: second id"}
    )
    sides = []
    for side, col, src in (("l", lk.left, lk.left_source), ("r", lk.right, lk.right_source)):
        on = "r.orig_id = k.id" + (f" AND r.source = {literal(src)}" if src else "")
        engine.execute(
            con,
            f"CREATE TABLE link_{side} AS SELECT k.{ROW} AS row, k.id, "
            "count(r.record_id) AS hits, min(r.record_id) AS record_id, "
            "list(DISTINCT r.source ORDER BY r.source) AS sources "
            f"FROM (SELECT {ROW}, {text(col)} AS id FROM links_raw) k "
            f"LEFT JOIN recs r ON {on} GROUP BY k.{ROW}, k.id",
            step="resolve links",
        )
        sides.append((side, col, src))
    for side, col, src in sides:
        _check_link_side(con, lk, side, col, src)
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


def _check_link_side(
    con: duckdb.DuckDBPyConnection, lk: LinksSpec, side: str, col: str, src: str | None
) -> None:
    """Every id in one column of the links file names exactly one record."""
    empty = engine.query(
        con,
        f"SELECT row FROM link_{side} WHERE id IS NULL ORDER BY row LIMIT 1",
    ).to_pylist()
    if empty:
        at = position(lk.format, empty[0]["row"])
        msg = f"links file {lk.display} ({at}): column {col!r} is empty"
        raise FileDataError(msg)
    unknown = engine.query(
        con,
        f"SELECT id, row, count(*) OVER () AS n FROM link_{side} "
        f"WHERE hits = 0 ORDER BY row LIMIT {SHOW}",
    ).to_pylist()
    if unknown:
        scope = f"source {src!r}" if src else "any file"
        msg = (
            f"links file {lk.display}: {unknown[0]['n']} id(s) in column {col!r} are not "
            f"ids of records in {scope}, e.g. "
            + examples(at_positions(unknown, lk.format), "{id!r} ({at})")
            + "; check the links match id_column"
            + ("" if src else " (or set links.left_source / links.right_source)")
        )
        raise FileDataError(msg)
    ambiguous = engine.query(
        con,
        f"SELECT id, sources FROM link_{side} WHERE hits > 1 ORDER BY row LIMIT {SHOW}",
    ).to_pylist()
    if ambiguous:
        r = ambiguous[0]
        msg = (
            f"links file {lk.display}: id {r['id']!r} in column {col!r} is an id in "
            f"several sources ({', '.join(r['sources'])}); set links.{'left' if side == 'l' else 'right'}_source "
            "to say which source the ids in that column belong to"
        )
        raise FileDataError(msg)
