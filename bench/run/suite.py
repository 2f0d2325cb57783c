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

    [engine]                  # optional; default: embedded DuckDB
    kind = "spark"            # "duckdb" or "spark" (needs the [spark] extra and Java)
    master = "local[2]"       # local[N], spark://host:7077 or a Spark Connect sc://host:15002
    conf = {"spark.executor.memory" = "4g"}  # Spark conf, passed as given

Unknown keys and wrong types are rejected with the file, the key and the reason.
:func:`check_suite` then checks the matchers it names (names, parameters, columns)
before any data is generated.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ENGINES",
    "DatasetSpec",
    "EngineSpec",
    "MatcherSpec",
    "Suite",
    "SuiteError",
    "default_suite_path",
    "engine_spec",
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
    "engine": dict,
}
_ENGINE_KEYS = {"kind": str, "master": str, "conf": dict}
#: Engines a suite can run its matchers on.
ENGINES = ("duckdb", "spark")
_MASTER = re.compile(r"local(\[(\d+|\*)\])?|(spark|sc|k8s)://\S+|yarn")
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
class EngineSpec:
    """The engine matchers run on: embedded DuckDB, or Spark at ``master`` with ``conf``.

    Evaluation and reports always run on DuckDB; only the matcher's work moves.
    """

    kind: str = "duckdb"
    master: str = "local[2]"
    conf: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for jobs and run records (``master``/``conf`` only for Spark)."""
        if self.kind == "duckdb":
            return {"kind": "duckdb"}
        return {"kind": self.kind, "master": self.master, "conf": dict(self.conf)}


def engine_spec(table: dict[str, Any], where: str) -> EngineSpec:
    """An :class:`EngineSpec` from an ``[engine]`` table (or CLI flags as a dict)."""
    _check_keys(table, _ENGINE_KEYS, where)
    kind = table.get("kind", "duckdb")
    if kind not in ENGINES:
        msg = f"{where}: kind must be one of {', '.join(ENGINES)}, got {kind!r}"
        raise SuiteError(msg)
    master = table.get("master", "local[2]")
    if not _MASTER.fullmatch(master):
        msg = (
            f"{where}: master {master!r} is not a Spark master "
            "(local[N], spark://host:port, sc://host:port, k8s://..., yarn)"
        )
        raise SuiteError(msg)
    conf = table.get("conf", {})
    bad = [k for k, v in conf.items() if isinstance(v, dict | list)]
    if bad:
        msg = f"{where}: conf.{bad[0]} must be a string, number or boolean"
        raise SuiteError(msg)
    if kind == "duckdb" and ("master" in table or conf):
        msg = f"{where}: master and conf apply to kind = 'spark' only"
        raise SuiteError(msg)
    norm = tuple(
        sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in conf.items())
    )
    return EngineSpec(kind=kind, master=master, conf=norm)


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
    engine: EngineSpec = field(default_factory=EngineSpec)


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
        engine=engine_spec(data.get("engine", {}), f"suite {path}: engine"),
    )


def default_suite_path() -> Path:
    """The bundled suite ``idbench run`` uses when given none."""
    return SUITES_DIR / "default.toml"
