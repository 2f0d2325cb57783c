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

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from bench.data.dataset import Dataset, DatasetError, fingerprint, write_manifest
from bench.data.paths import bundled_dir, plain_folder
from bench.data.sources.description import describe
from bench.data.sources.recipe import load_recipe
from bench.data.sources.spec import CANONICAL_COLUMNS, FileDataError, FileRecipe
from bench.data.sources.stage import check_ids, check_typed, stage_files
from bench.data.sources.truth import truth_from_links, truth_from_values
from bench.sql import engine
from bench.sql.engine import quote_ident

__all__ = ["GENERATOR", "build", "default_out", "folder_name", "prepare"]

log = logging.getLogger(__name__)

#: Bump when the conversion changes its output, so existing datasets are rebuilt.
GENERATOR = {"name": "idbench.sources", "version": "1"}


def default_out(name: str) -> Path:
    """Where :func:`prepare` writes a dataset by default: ``datasets/generated/<name>``.

    Raises
    ------
    DatasetError
        When ``name`` is not one plain folder name (it would lie outside the folder).
    """
    return Path("datasets") / "generated" / plain_folder(name)


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
    """Stage and check the inputs, number the records, derive the truth, write both."""
    targets = spec.targets
    stage_files(con, spec, targets)
    check_ids(con, spec)
    check_typed(con, spec, targets)
    engine.execute(
        con,
        "CREATE TABLE recs AS SELECT CAST(row_number() OVER ("
        "ORDER BY md5(source || chr(0) || orig_id), source, orig_id) AS BIGINT) AS record_id, "
        "* FROM stage",
        step="assign record ids",
    )
    if spec.links is not None:
        truth_from_links(con, spec, spec.links)
    else:
        truth_from_values(con, spec)

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
