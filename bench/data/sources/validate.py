"""Checks of single recipe values: keys, strings, column mappings, formats, encodings.

Each check raises :class:`~bench.data.sources.spec.FileDataError` naming the recipe, the
key and what to write instead.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from bench.data.paths import name_problem
from bench.data.sources.spec import CANONICAL_COLUMNS, RESERVED_COLUMNS, FileDataError

#: Input file formats, and the format each file extension implies.
FORMATS = ("csv", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: Text encodings of input files DuckDB reads.
ENCODINGS = ("utf-8", "latin-1", "utf-16")


def recipe_at(path: Path, key: str | None = None) -> str:
    """Where an error is: ``recipe <path>``, plus ``, key '<key>'`` when given."""
    return f"recipe {path}" + (f", key {key!r}" if key else "")


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'a' or 'b'?)`` for close matches of ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def check_keys(table: dict[str, Any], allowed: Any, path: Path, where: str) -> None:
    """Fail on the first key of ``table`` that is not in ``allowed``."""
    unknown = [k for k in table if k not in allowed]
    if unknown:
        k = unknown[0]
        msg = (
            f"{recipe_at(path)}: unknown key {k!r} in {where}{did_you_mean(k, list(allowed))}; "
            f"allowed keys: {', '.join(allowed)}"
        )
        raise FileDataError(msg)


def get_str(table: dict[str, Any], key: str, path: Path, default: str | None = None) -> str | None:
    """A non-empty string option, or ``default`` when the key is absent."""
    value = table.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        msg = f"{recipe_at(path, key)}: expected a non-empty string, got {value!r}"
        raise FileDataError(msg)
    return value


def get_name(table: dict[str, Any], path: Path) -> str:
    """The recipe's ``name`` (default: the file's stem), refused when it is not a plain name."""
    name = get_str(table, "name", path) or path.stem
    problem = name_problem(name) if "name" in table else None
    if problem:
        msg = f"{recipe_at(path, 'name')}: {problem}"
        raise FileDataError(msg)
    return name


def get_mapping(table: dict[str, Any], path: Path, where: str) -> dict[str, str]:
    """The ``columns`` table of ``table`` (your column -> idbench column), ``{}`` if absent."""
    value = table.get("columns", {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        msg = (
            f"{recipe_at(path)}: {where} must be a table of strings, "
            'your column name = idbench column name, e.g. surname = "family_name"'
        )
        raise FileDataError(msg)
    return dict(value)


def resolve_path(raw: str, base: Path) -> Path:
    """A path as written in a recipe, relative ones taken from the recipe's folder ``base``."""
    p = Path(raw).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def file_format(raw: str | None, path: Path, recipe: Path, key: str) -> str:
    """``csv`` or ``parquet``: as given, or guessed from the extension of ``path``."""
    if raw is None:
        suffix = path.suffix.lower()
        if suffix not in _SUFFIX_FORMAT:
            msg = (
                f"{recipe_at(recipe, key)}: cannot tell the format of {path.name} from its "
                f'extension; add format = "csv" or format = "parquet"'
            )
            raise FileDataError(msg)
        return _SUFFIX_FORMAT[suffix]
    if raw not in FORMATS:
        msg = f"{recipe_at(recipe, key)}: unknown format {raw!r}{did_you_mean(raw, FORMATS)}; use one of {', '.join(FORMATS)}"
        raise FileDataError(msg)
    return raw


def check_encoding(raw: str, recipe: Path, key: str) -> str:
    """The encoding under its canonical name (``latin1`` -> ``latin-1``); fail if unsupported."""
    norm = raw.lower().replace("_", "-")
    norm = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1", "utf16": "utf-16"}.get(
        norm, norm
    )
    if norm not in ENCODINGS:
        msg = (
            f"{recipe_at(recipe, key)}: unsupported encoding {raw!r}; use one of "
            f"{', '.join(ENCODINGS)} (convert other encodings to UTF-8 first, e.g. with iconv)"
        )
        raise FileDataError(msg)
    return norm


def check_mapping(columns: dict[str, str], recipe: Path, where: str, truth: str | None) -> None:
    """Fail when a mapping targets a reserved column, one column twice, shows the truth
    column, or looks like a misspelt idbench column.
    """
    targets: dict[str, str] = {}
    for user, target in columns.items():
        if target in RESERVED_COLUMNS:
            msg = (
                f"{recipe_at(recipe)}: {where} maps {user!r} to {target!r}, which idbench writes "
                "itself; the id column is named with id_column and kept as orig_id"
            )
            raise FileDataError(msg)
        if target in targets:
            msg = (
                f"{recipe_at(recipe)}: {where} maps both {targets[target]!r} and {user!r} to "
                f"{target!r}; each idbench column can come from one column only"
            )
            raise FileDataError(msg)
        if truth is not None and user == truth:
            msg = (
                f"{recipe_at(recipe)}: {where} maps the truth column {user!r}; the truth must "
                "not be shown to matchers, remove it from the mapping"
            )
            raise FileDataError(msg)
        if target not in CANONICAL_COLUMNS:
            close = difflib.get_close_matches(target, CANONICAL_COLUMNS, n=1, cutoff=0.8)
            if close:
                msg = (
                    f"{recipe_at(recipe)}: {where} maps {user!r} to {target!r}, which is not an "
                    f"idbench column; did you mean {close[0]!r}? (see docs/dataset-layout.md)"
                )
                raise FileDataError(msg)
        targets[target] = user
