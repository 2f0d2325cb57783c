"""Suite specs: which datasets x matchers x parameter grids x repeats to run.

A suite is a TOML file::

    name = "default"          # results go to results/<name>/
    repeats = 1               # runs per (dataset, matcher, params); repeat r uses seed + r
    seed = 42
    timeout_s = 600           # per run; the run is killed and recorded as "timeout"
    memory_limit = "6GB"      # per run, resident memory of the run's process tree
    threads = 2               # DuckDB threads per run
    python_path = ["."]       # extra import dirs for matchers given as "module:Class"

    [[datasets]]
    recipe = "identity-graph" # a generated preset, a FEBRL set (febrl1..4) or a recipe file
    size = "small"
    # or: path = "some/dataset/dir"  (any directory in the documented layout)

    [[matchers]]
    name = "exact"                       # a registered name or "module:Class"
    params = {keys = ["email"]}          # fixed parameters
    grid = {keys = [["email"], ["phone"]]}  # each combination is a separate run

Unknown keys and wrong types are rejected with the file, the key and the reason.
:func:`check_suite` then checks the matchers it names (names, parameters, columns)
before any data is generated.
"""

from __future__ import annotations

import collections.abc as abc
import difflib
import inspect
import itertools
import math
import re
import tomllib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "COLUMN_PARAMS",
    "DatasetSpec",
    "MatcherSpec",
    "Suite",
    "SuiteError",
    "check_suite",
    "default_suite_path",
    "load_suite",
    "parse_bytes",
]

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"

_SUITE_KEYS = {
    "name": str,
    "description": str,
    "repeats": int,
    "seed": int,
    "timeout_s": (int, float),
    "memory_limit": (str, int),
    "threads": int,
    "python_path": list,
    "datasets": list,
    "matchers": list,
}
_DATASET_KEYS = {"path": str, "recipe": str, "size": str, "seed": int, "overrides": dict}
_MATCHER_KEYS = {"name": str, "params": dict, "grid": dict}


class SuiteError(ValueError):
    """A suite file is malformed; the message names the file, key and reason."""


def parse_bytes(value: str | int, *, where: str = "memory_limit") -> int:
    """Parse ``"6GB"``, ``"512MiB"``, ``"1.5G"`` or an integer byte count."""
    if isinstance(value, int):
        if value <= 0:
            msg = f"{where}: must be positive, got {value}"
            raise SuiteError(msg)
        return value
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?B?)\s*", value, flags=re.IGNORECASE)
    if not m:
        msg = f"{where}: cannot read {value!r} as a size (e.g. '6GB', '512MB')"
        raise SuiteError(msg)
    number, unit, _ = m.groups()
    power = " KMGT".index(unit.upper() or " ")
    size = int(float(number) * 1024**power)
    if size <= 0:
        msg = f"{where}: must be positive, got {value!r}"
        raise SuiteError(msg)
    return size


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset entry of a suite: an existing directory or a recipe to build."""

    path: Path | None = None
    recipe: str | None = None
    size: str | None = None
    seed: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Short human label."""
        if self.path is not None:
            return str(self.path)
        size = f" ({self.size})" if self.size else ""
        return f"{self.recipe}{size}"


@dataclass(frozen=True)
class MatcherSpec:
    """One matcher entry: fixed params and a grid whose combinations are separate runs."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)

    def expand(self) -> list[dict[str, Any]]:
        """All parameter combinations, fixed params overlaid by grid values."""
        if not self.grid:
            return [dict(self.params)]
        names = sorted(self.grid)
        return [
            {**self.params, **dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*(self.grid[n] for n in names))
        ]


@dataclass(frozen=True)
class Suite:
    """A parsed suite spec."""

    name: str
    datasets: tuple[DatasetSpec, ...]
    matchers: tuple[MatcherSpec, ...]
    repeats: int = 1
    seed: int = 42
    timeout_s: float = 600.0
    memory_limit_bytes: int = 6 * 1024**3
    threads: int = 2
    python_path: tuple[Path, ...] = ()
    description: str = ""
    source: Path | None = None


def _check_keys(table: dict[str, Any], allowed: dict[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"{where}: unknown key {key!r}{hint}; allowed: {', '.join(sorted(allowed))}"
            raise SuiteError(msg)
        want = allowed[key]
        if isinstance(value, bool) or not isinstance(value, want):
            names = (
                " or ".join(t.__name__ for t in want) if isinstance(want, tuple) else want.__name__
            )
            msg = f"{where}: key {key!r} must be {names}, got {type(value).__name__} {value!r}"
            raise SuiteError(msg)


def _suite_file(path: Path) -> Path:
    """The file ``path`` names: itself, or the bundled suite of that name."""
    if not path.exists() and (SUITES_DIR / f"{path}.toml").is_file():
        path = SUITES_DIR / f"{path}.toml"
    if not path.is_file():
        bundled = ", ".join(p.stem for p in sorted(SUITES_DIR.glob("*.toml")))
        msg = f"suite {path}: no such file (bundled suites: {bundled})"
        raise SuiteError(msg)
    return path


def _entries(
    data: dict[str, Any], key: str, allowed: dict[str, Any], path: Path
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, table)`` for every ``[[key]]`` table, its keys checked."""
    for i, table in enumerate(data.get(key, [])):
        where = f"suite {path}: {key}[{i}]"
        if not isinstance(table, dict):
            msg = f"{where}: must be a table ([[{key}]])"
            raise SuiteError(msg)
        _check_keys(table, allowed, where)
        yield where, table


def _dataset_spec(d: dict[str, Any], where: str, base: Path) -> DatasetSpec:
    """One ``[[datasets]]`` entry; relative paths are relative to the suite file."""
    if ("path" in d) == ("recipe" in d):
        msg = f"{where}: give exactly one of 'path' (a dataset directory) or 'recipe'"
        raise SuiteError(msg)
    recipe = d.get("recipe")
    if recipe and (recipe.endswith(".toml") or "/" in recipe):
        recipe = str((base / recipe).resolve())
    return DatasetSpec(
        path=(base / d["path"]).resolve() if "path" in d else None,
        recipe=recipe,
        size=d.get("size"),
        seed=d.get("seed"),
        overrides=d.get("overrides", {}),
    )


def _matcher_spec(m: dict[str, Any], where: str) -> MatcherSpec:
    """One ``[[matchers]]`` entry."""
    if "name" not in m:
        msg = f"{where}: 'name' is required (a registered matcher or 'module:Class')"
        raise SuiteError(msg)
    for key, values in m.get("grid", {}).items():
        if not isinstance(values, list) or not values:
            msg = f"{where}: grid.{key} must be a non-empty list of values"
            raise SuiteError(msg)
    return MatcherSpec(name=m["name"], params=m.get("params", {}), grid=m.get("grid", {}))


def _check_values(data: dict[str, Any], path: Path) -> None:
    """Top-level values out of range (types were checked by :func:`_check_keys`)."""
    for key in ("repeats", "threads"):
        if key in data and data[key] < 1:
            msg = f"suite {path}: {key} must be >= 1, got {data[key]}"
            raise SuiteError(msg)
    if "name" in data and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", data["name"]):
        msg = (
            f"suite {path}: name {data['name']!r} must be letters, digits, '.', '_' or '-' "
            "(it names the results folder)"
        )
        raise SuiteError(msg)
    # TOML reads nan and inf: a nan limit compares false with everything, so a run
    # under it would never time out
    if "timeout_s" in data and not (math.isfinite(data["timeout_s"]) and data["timeout_s"] > 0):
        msg = f"suite {path}: timeout_s must be a finite number > 0, got {data['timeout_s']}"
        raise SuiteError(msg)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite TOML file.

    Parameters
    ----------
    path
        A TOML file, or the name of a bundled suite (``default``).
    """
    path = _suite_file(Path(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        msg = f"suite {path}: not valid TOML: {exc}"
        raise SuiteError(msg) from exc
    _check_keys(data, _SUITE_KEYS, f"suite {path}")
    base = path.parent
    datasets = [
        _dataset_spec(d, where, base)
        for where, d in _entries(data, "datasets", _DATASET_KEYS, path)
    ]
    matchers = [
        _matcher_spec(m, where) for where, m in _entries(data, "matchers", _MATCHER_KEYS, path)
    ]
    if not datasets:
        msg = f"suite {path}: no [[datasets]] given"
        raise SuiteError(msg)
    if not matchers:
        msg = f"suite {path}: no [[matchers]] given"
        raise SuiteError(msg)
    _check_values(data, path)
    return Suite(
        name=data.get("name", path.stem),
        description=data.get("description", ""),
        datasets=tuple(datasets),
        matchers=tuple(matchers),
        repeats=data.get("repeats", 1),
        seed=data.get("seed", 42),
        timeout_s=float(data.get("timeout_s", 600)),
        memory_limit_bytes=parse_bytes(
            data.get("memory_limit", "6GB"), where=f"suite {path}: memory_limit"
        ),
        threads=data.get("threads", 2),
        python_path=tuple((base / p).resolve() for p in data.get("python_path", [])),
        source=path.resolve(),
    )


def default_suite_path() -> Path:
    """The bundled suite ``idbench run`` uses when given none."""
    return SUITES_DIR / "default.toml"


# --- checking a suite against the matchers it names, before anything runs ---------------

#: Parameters of the built-in matchers whose values name record columns (``exact keys``,
#: ``cascade rules``, ``recordlinkage block_on`` ...): checked against the columns a
#: generated dataset can have, where every dataset of the suite is generated.
COLUMN_PARAMS = frozenset(
    {"keys", "rules", "block_on", "sorted_neighbourhood", "group_size_keys", "unique_keys"}
)


def _entry_line(lines: list[str], table: str, index: int, key: str | None) -> int:
    """1-based line of ``key`` in the ``index``-th ``[[table]]`` of a TOML text.

    The line of the table's header when the key is not found there (or ``key`` is
    None); 1 when the table cannot be found (an inline array of tables).
    """
    header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
    starts = [i for i, line in enumerate(lines) if header.match(line)]
    if index >= len(starts):
        return 1
    start = starts[index]
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    if key is not None:
        pattern = re.compile(rf"(^|[{{,\s]){re.escape(key)}\s*=")
        for i in range(start + 1, end):
            if pattern.search(lines[i].split("#", 1)[0]):
                return i + 1
    return start + 1


_SIMPLE_TYPES: dict[Any, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
}
_SEQUENCES = (list, tuple, abc.Sequence, abc.Iterable, abc.Collection)
_MAPPINGS = (dict, abc.Mapping)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a TOML value fits a parameter's annotation (lenient where unsure)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint in _SIMPLE_TYPES:
        # TOML booleans are not numbers here (a Python bool is an int)
        return isinstance(value, _SIMPLE_TYPES[hint]) and (
            hint is bool or not isinstance(value, bool)
        )
    if origin in _SEQUENCES or origin in _MAPPINGS or hint in _MAPPINGS:
        return _conforms_container(value, origin or hint, args)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _conforms_container(value: Any, origin: Any, args: tuple[Any, ...]) -> bool:
    """:func:`_conforms` for a sequence (a TOML array) or a mapping (a TOML table)."""
    if origin in _MAPPINGS:
        if not isinstance(value, dict):
            return False
        return len(args) != 2 or all(_conforms(v, args[1]) for v in value.values())
    if not isinstance(value, list):
        return False
    inner = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else None
    return inner is None or all(_conforms(v, inner) for v in value)


def _type_name(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if isinstance(hint, type) else None
    return text or str(hint).replace("typing.", "").replace("collections.abc.", "")


def _param_problems(cls: type, params: dict[str, list[Any]]) -> list[tuple[str | None, str]]:
    """``(key, problem)`` for each parameter the class's ``__init__`` does not take as given.

    ``params`` maps each name to every value the suite gives it (fixed and grid).
    """
    sig = inspect.signature(cls.__init__)
    accepted = {n: p for n, p in sig.parameters.items() if n != "self"}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an unresolvable annotation only skips type checks
        hints = {}
    problems: list[tuple[str | None, str]] = []
    names = [n for n, p in accepted.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    for key, values in params.items():
        if key not in accepted:
            if takes_any:
                continue
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(names) or "none"
            problems.append((key, f"unknown parameter {key!r}{hint}; it takes: {known}"))
            continue
        want = hints.get(key, accepted[key].annotation)
        for value in values:
            if not _conforms(value, want):
                problems.append(
                    (key, f"parameter {key!r} must be {_type_name(want)}, got {value!r}")
                )
    return problems


def _column_names(value: Any) -> list[str]:
    """The strings in a column parameter's value (nested lists flattened)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [c for v in value for c in _column_names(v)]
    return []


def _close_column(name: str, columns: frozenset[str]) -> list[str]:
    """The column ``name`` most likely meant, as a list of zero or one.

    A column it starts with or that starts with it (``phone_number`` -> ``phone``), else
    the closest spelling (``emial`` -> ``email``).
    """
    prefixed = sorted((c for c in columns if name.startswith(c) or c.startswith(name)), key=len)
    return prefixed[-1:] or difflib.get_close_matches(name, sorted(columns), n=1)


def _columns_knowable(suite: Suite) -> bool:
    """Whether every dataset is generated (so its columns are the documented ones)."""
    from bench.data import sources

    for ds in suite.datasets:
        if ds.path is not None or ds.recipe is None:
            return False
        try:
            if sources.is_file_recipe(ds.recipe):
                return False
        except Exception:  # noqa: BLE001 - an unreadable recipe is reported when it is built
            return False
    return True


def _matcher_problems(
    suite: Suite, m: MatcherSpec, columns: frozenset[str] | None
) -> list[tuple[str | None, str]]:
    """``(key, problem)`` of one ``[[matchers]]`` entry: its name, parameters, columns."""
    import importlib.metadata as md

    from bench.run.registry import GROUP, RegistryError, load_matcher_class

    try:
        cls = load_matcher_class(m.name, python_path=list(suite.python_path))
    except RegistryError as exc:
        if ":" not in m.name and any(ep.name == m.name for ep in md.entry_points(group=GROUP)):
            # a registered plugin that is broken: its runs are stored as errors with the
            # reason, so one broken third-party plugin does not stop the whole suite
            return []
        return [("name", str(exc))]
    values: dict[str, list[Any]] = {k: [v] for k, v in m.params.items()}
    for k, vs in m.grid.items():
        values.setdefault(k, []).extend(vs)
    problems = _param_problems(cls, values)
    if columns is not None:
        for key in sorted(COLUMN_PARAMS & set(values)):
            missing = sorted({c for v in values[key] for c in _column_names(v) if c not in columns})
            if missing:
                close = [c for x in missing for c in _close_column(x, columns)]
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                problems.append(
                    (
                        key,
                        f"{key} names column(s) {', '.join(map(repr, missing))} that no "
                        f"generated dataset has{hint}; columns: {', '.join(sorted(columns))}",
                    )
                )
    return problems


def check_suite(suite: Suite) -> None:
    """Check every matcher entry of a suite before anything is generated or run.

    Unknown matcher names (with the closest registered names), parameters the matcher's
    ``__init__`` does not take or whose values do not fit its annotations, and, when
    every dataset is generated, column parameters (:data:`COLUMN_PARAMS`) naming a column
    no generated dataset has.

    Raises
    ------
    SuiteError
        Listing every problem found, each with the suite file and line.
    """
    from bench.data.sources.spec import CANONICAL_COLUMNS, RESERVED_COLUMNS

    columns = (
        frozenset(CANONICAL_COLUMNS) | frozenset(RESERVED_COLUMNS)
        if _columns_knowable(suite)
        else None
    )
    text = suite.source.read_text(encoding="utf-8") if suite.source else ""
    lines = text.splitlines()
    where = suite.source or Path("suite")
    found = []
    for i, m in enumerate(suite.matchers):
        for key, problem in _matcher_problems(suite, m, columns):
            line = _entry_line(lines, "matchers", i, key)
            found.append(f"{where}:{line}: matchers[{i}] ({m.name}): {problem}")
    if found:
        msg = f"suite {where}: {len(found)} problem(s), nothing was run:\n  " + "\n  ".join(found)
        raise SuiteError(msg)
