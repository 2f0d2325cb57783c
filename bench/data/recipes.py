"""Dataset recipes: TOML presets -> validated parameters -> generated dataset directories.

A recipe is a TOML file in ``datasets/`` (or any path) that overrides some of the knobs
in :data:`~bench.data.knobs.KNOBS`; every knob has a default, a unit and a documented basis in
``datasets/README.md``. A recipe may carry a ``[sizes.<size>]`` table per size
(``tiny``, ``small``, ``large``, ``xl``) whose keys override the base values for that
size. Command-line overrides (``key=value`` with a dotted key) are applied last.

Example
-------
>>> recipe = load_recipe("cdp-realistic", size="tiny", overrides=["emails.churn_per_year=0.5"])
>>> recipe.params["emails"]["churn_per_year"]
0.5
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data.knobs import KNOBS, SIZES, Knob
from bench.data.paths import bundled_dir, name_problem, plain_folder

__all__ = [
    "KNOBS",
    "SIZES",
    "Knob",
    "Recipe",
    "RecipeError",
    "available_recipes",
    "load_recipe",
    "parse_overrides",
    "recipes_dir",
]

log = logging.getLogger(__name__)


class RecipeError(ValueError):
    """A recipe is malformed: names the file, the key and the reason."""


#: Keys of a recipe file that are not knobs. ``kind`` (default ``"generated"``) lets
#: other dataset descriptions (e.g. ``kind = "febrl"``) live beside generator recipes.
META_KEYS = ("recipe", "sizes", "kind")


def recipes_dir() -> Path:
    """The folder holding the bundled recipe TOML files.

    idbench runs from a source checkout (``make run``; editable install), where this is
    ``<repo>/datasets``.
    """
    return bundled_dir().resolve()


def _kind(path: Path) -> str:
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8")).get("kind", "generated"))
    except (OSError, tomllib.TOMLDecodeError):
        return "generated"


def available_recipes() -> list[str]:
    """Names of the bundled generator recipes (TOML stems in :func:`recipes_dir`).

    Files declaring another ``kind`` (e.g. ``"febrl"``) are dataset descriptions for
    other loaders and are not listed.
    """
    return sorted(p.stem for p in recipes_dir().glob("*.toml") if _kind(p) == "generated")


@dataclass(frozen=True)
class Recipe:
    """A resolved, validated recipe.

    Parameters
    ----------
    name
        The recipe's name (file stem or ``[recipe] name``).
    size
        The size the parameters were resolved for.
    params
        Every knob, section -> key -> value (defaults filled in).
    source
        Where the recipe came from (file path).
    description
        One line from ``[recipe] description``.
    overrides
        The command-line overrides applied, as given.
    bundled
        Whether the recipe is one of the presets shipped in :func:`recipes_dir`.
    """

    name: str
    size: str
    params: dict[str, dict[str, Any]]
    source: str = ""
    description: str = ""
    overrides: tuple[str, ...] = field(default_factory=tuple)
    bundled: bool = False

    def _digest(self) -> str:
        """Short hash of the resolved parameters (what the data depends on besides the seed)."""
        return hashlib.sha256(json.dumps(self.params, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def dataset_name(self) -> str:
        """``<name>-<size>``, plus ``-o<hash>`` of the parameters when overrides apply.

        Datasets of one recipe that differ by overrides (a sweep) get distinct names
        and directories.
        """
        if not self.overrides:
            return f"{self.name}-{self.size}"
        return f"{self.name}-{self.size}-o{self._digest()}"

    @property
    def folder_name(self) -> str:
        """Directory name of the generated dataset, without the ``-s<seed>`` suffix.

        :attr:`dataset_name` for bundled presets and for overridden recipes (whose name
        already carries the parameter hash); ``<name>-<size>-r<hash>`` for a recipe file
        of your own. The ``name`` of a recipe file is free, so two different files (e.g.
        ``/a/shop.toml`` and ``/b/shop.toml``) may share it: with the name alone they
        would write into one directory and each would overwrite the other's data, even
        between planning and running one suite. The hash of the resolved parameters
        makes the directory content-addressed instead: different parameters never share
        a directory, the same parameters (the same file used twice, or a copy of it)
        reuse one, and an edited recipe gets a new directory while the runs stored
        against the old data can still be recomputed. Bundled presets keep their plain
        names, which stored reference results refer to.

        Raises
        ------
        DatasetError
            When the name would make the folder lie outside its root (``load_recipe``
            refuses such names already; this guards recipes built by hand).
        """
        if self.bundled or self.overrides:
            return plain_folder(self.dataset_name)
        return plain_folder(f"{self.dataset_name}-r{self._digest()}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored in the dataset manifest."""
        return {
            "name": self.name,
            "size": self.size,
            "description": self.description,
            "overrides": list(self.overrides),
            "params": copy.deepcopy(self.params),
        }

    def get(self, dotted: str) -> Any:
        """Value of a knob by dotted key, e.g. ``"emails.churn_per_year"``."""
        section, key = dotted.split(".", 1)
        return self.params[section][key]


def _fail(where: str, key: str, reason: str) -> RecipeError:
    msg = f"recipe {where}: key {key!r}: {reason}"
    return RecipeError(msg)


def _is_num(v: Any) -> bool:
    # NaN and infinities pass every range comparison, so they are not numbers here
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_value(where: str, key: str, knob: Knob, value: Any) -> Any:
    """Validate (and lightly coerce) one knob value; raise naming file, key and reason."""
    check = _CHECKS.get(knob.check)
    return value if check is None else check(where, key, knob, value)


def _check_count(where: str, key: str, knob: Knob, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(where, key, f"must be an integer >= 0 ({knob.unit}), got {value!r}")
    return value


def _check_number(where: str, key: str, knob: Knob, value: Any) -> float:
    """The checks ``positive`` (> 0), ``rate`` (>= 0) and ``share`` (in [0, 1])."""
    c = knob.check
    if not _is_num(value):
        raise _fail(where, key, f"must be a number ({knob.unit}), got {value!r}")
    if c == "positive" and value <= 0:
        raise _fail(where, key, f"must be > 0 ({knob.unit}), got {value!r}")
    if c == "rate" and value < 0:
        raise _fail(where, key, f"must be >= 0 ({knob.unit}), got {value!r}")
    if c == "share" and not 0 <= value <= 1:
        raise _fail(where, key, f"is a share and must lie in [0, 1], got {value!r}")
    return float(value)


def _check_shares(where: str, key: str, knob: Knob, value: Any) -> list[float]:
    if not isinstance(value, list) or len(value) != len(knob.default):
        n = len(knob.default)
        raise _fail(where, key, f"must be a list of {n} shares ({knob.unit}), got {value!r}")
    if any(not _is_num(v) or v < 0 or v > 1 for v in value):
        raise _fail(where, key, f"shares must lie in [0, 1], got {value!r}")
    if abs(sum(value) - 1.0) > 1e-6:
        raise _fail(where, key, f"shares must sum to 1, they sum to {sum(value):.6g}")
    return [float(v) for v in value]


def _check_range(where: str, key: str, knob: Knob, value: Any) -> list[Any]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(_is_num(v) for v in value)
        or value[0] < 0
        or value[0] > value[1]
    ):
        raise _fail(where, key, f"must be [lo, hi] with 0 <= lo <= hi ({knob.unit})")
    return [type(knob.default[0])(v) for v in value]


def _check_rates(where: str, key: str, knob: Knob, value: Any) -> list[float] | dict[str, float]:
    """Rates >= 0: a list as long as the default, or a table of the default's names."""
    if isinstance(knob.default, list):
        if (
            not isinstance(value, list)
            or len(value) != len(knob.default)
            or any(not _is_num(v) or v < 0 for v in value)
        ):
            n = len(knob.default)
            raise _fail(where, key, f"must be a list of {n} numbers >= 0 ({knob.unit})")
        return [float(v) for v in value]
    if not isinstance(value, Mapping):
        raise _fail(where, key, f"must be a table of {', '.join(knob.default)}")
    unknown = sorted(set(value) - set(knob.default))
    if unknown:
        raise _fail(
            where,
            f"{key}.{unknown[0]}",
            f"unknown key (known: {', '.join(sorted(knob.default))})",
        )
    merged = dict(knob.default)
    for k2, v in value.items():
        if not _is_num(v) or v < 0:
            raise _fail(where, f"{key}.{k2}", f"must be a number >= 0, got {v!r}")
        if "share" in knob.unit and v > 1:
            raise _fail(where, f"{key}.{k2}", f"is a share and must be <= 1, got {v!r}")
        merged[k2] = float(v)
    return merged


def _check_bool(where: str, key: str, knob: Knob, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, key, f"must be true or false, got {value!r}")
    return value


def _check_date(where: str, key: str, knob: Knob, value: Any) -> str:
    try:
        dt.date.fromisoformat(str(value))
    except ValueError:
        raise _fail(where, key, f"must be an ISO date YYYY-MM-DD, got {value!r}") from None
    return str(value)


def _check_choice(where: str, key: str, knob: Knob, value: Any) -> Any:
    if value not in knob.choices:
        raise _fail(where, key, f"must be one of {', '.join(knob.choices)}, got {value!r}")
    return value


def _check_subset(where: str, key: str, knob: Knob, value: Any) -> list[str]:
    if not isinstance(value, list) or any(v not in knob.choices for v in value):
        raise _fail(where, key, f"must be a list drawn from {', '.join(knob.choices)}")
    return [v for v in knob.choices if v in value]  # canonical order


#: The validator of each :attr:`Knob.check` rule (see :class:`~bench.data.knobs.Knob`).
_CHECKS: dict[str, Callable[[str, str, Knob, Any], Any]] = {
    "count": _check_count,
    "positive": _check_number,
    "rate": _check_number,
    "share": _check_number,
    "shares": _check_shares,
    "range": _check_range,
    "rates": _check_rates,
    "bool": _check_bool,
    "date": _check_date,
    "choice": _check_choice,
    "subset": _check_subset,
}


def _apply(where: str, params: dict[str, dict[str, Any]], table: Mapping[str, Any]) -> None:
    """Apply a nested override table onto ``params``, validating every key."""
    for section, body in table.items():
        if section not in KNOBS:
            raise _fail(where, section, f"unknown section (known: {', '.join(KNOBS)})")
        if not isinstance(body, Mapping):
            raise _fail(where, section, "must be a table of knobs")
        for key, value in body.items():
            knob = KNOBS[section].get(key)
            dotted = f"{section}.{key}"
            if knob is None:
                known = ", ".join(sorted(KNOBS[section]))
                raise _fail(where, dotted, f"unknown knob (known in [{section}]: {known})")
            params[section][key] = _check_value(where, dotted, knob, value)


def _check_consistency(where: str, params: dict[str, dict[str, Any]]) -> None:
    """Cross-knob rules that single values cannot express."""
    e = params["emails"]
    if e["use_primary"] + e["use_work"] > 1:
        raise _fail(where, "emails.use_work", "use_primary + use_work must not exceed 1")
    n = params["noise"]
    if n["keyboard_row"] + n["keyboard_column"] > 1:
        raise _fail(where, "noise.keyboard_column", "keyboard_row + keyboard_column must be <= 1")
    if params["world"]["persons"] < 2:
        raise _fail(where, "world.persons", "must be at least 2 (a population to resolve)")
    if params["world"]["horizon_days"] < 1:
        raise _fail(where, "world.horizon_days", "must be at least 1 day")
    if params["devices"]["max_per_adult"] < 1:
        raise _fail(where, "devices.max_per_adult", "must be at least 1")
    if params["events"]["domains"] < 1:
        raise _fail(where, "events.domains", "must be at least 1")
    if params["events"]["max_sessions"] < 1:
        raise _fail(where, "events.max_sessions", "must be at least 1")
    if params["networks"]["office_egress_ips"][0] < 1:
        raise _fail(where, "networks.office_egress_ips", "an office has at least 1 egress IP")
    if params["networks"]["cgnat_subscribers_per_ip"] < 1:
        raise _fail(where, "networks.cgnat_subscribers_per_ip", "must be at least 1")
    if params["networks"]["sample_share"] <= 0:
        raise _fail(where, "networks.sample_share", "must be above 0 (the sample's share)")
    if params["networks"]["hotspot_users_per_day"] < 1:
        raise _fail(where, "networks.hotspot_users_per_day", "must be at least 1")
    src = params["sources"]
    if "login" in src["first_party"] and "cookie" not in src["anonymous"]:
        raise _fail(
            where,
            "sources.first_party",
            "login needs the cookie source in sources.anonymous (logins are drawn per cookie)",
        )
    if not params["sources"]["first_party"] and not params["sources"]["anonymous"]:
        raise _fail(where, "sources", "at least one source must be rendered")


def _parse_override(item: str) -> tuple[str, Any]:
    """``"a.b=value"`` -> (``"a.b"``, parsed value); values parse as TOML, else strings."""
    if "=" not in item:
        msg = f"override {item!r}: expected key=value with a dotted key (e.g. world.persons=500)"
        raise RecipeError(msg)
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c.d=x"]`` -> ``{"a.b": 1, "c.d": "x"}`` (values parsed as TOML)."""
    return dict(_parse_override(item) for item in items)


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    parts = dotted.split(".")
    out: dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        out = {p: out}
    return out


def _resolve_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        return p
    return recipes_dir() / f"{name_or_path}.toml"


def load_recipe(
    name_or_path: str | Path,
    *,
    size: str = "tiny",
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
) -> Recipe:
    """Load a recipe by preset name or TOML path, apply a size and overrides, validate.

    Parameters
    ----------
    name_or_path
        A bundled preset name (``"cdp-realistic"``) or a path to a TOML file.
    size
        One of :data:`SIZES`; the recipe's ``[sizes.<size>]`` table is applied.
    overrides
        ``["section.key=value", ...]`` (values parsed as TOML literals) or a mapping
        ``{"section.key": value}``; applied last.

    Raises
    ------
    RecipeError
        Naming the file, the key and the reason (unknown key, impossible value,
        malformed TOML, unknown size).
    """
    path = _resolve_path(name_or_path)
    where = str(path)
    if not path.is_file():
        known = ", ".join(available_recipes()) or "none"
        msg = f"recipe {name_or_path!r}: no such file {path} (bundled recipes: {known})"
        raise RecipeError(msg)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        msg = f"recipe {where}: malformed TOML: {exc}"
        raise RecipeError(msg) from exc
    if size not in SIZES:
        raise _fail(where, "size", f"unknown size {size!r} (known: {', '.join(SIZES)})")

    kind = doc.get("kind", "generated")
    if kind != "generated":
        raise _fail(where, "kind", f"{kind!r} is not a generator recipe (expected 'generated')")
    meta = doc.get("recipe", {})
    if not isinstance(meta, Mapping):
        raise _fail(where, "recipe", "must be a table with name and description")
    unknown_meta = sorted(set(meta) - {"name", "description"})
    if unknown_meta:
        raise _fail(where, f"recipe.{unknown_meta[0]}", "unknown key (known: name, description)")
    name = str(meta.get("name", path.stem))
    problem = name_problem(name) if "name" in meta else None
    if problem:
        raise _fail(where, "recipe.name", problem)
    params = {
        s: {k: copy.deepcopy(kn.default) for k, kn in body.items()} for s, body in KNOBS.items()
    }
    _apply(where, params, {k: v for k, v in doc.items() if k not in META_KEYS})

    sizes = doc.get("sizes", {})
    if not isinstance(sizes, Mapping):
        raise _fail(where, "sizes", "must be a table of sizes")
    bad = sorted(set(sizes) - set(SIZES))
    if bad:
        raise _fail(where, f"sizes.{bad[0]}", f"unknown size (known: {', '.join(SIZES)})")
    if size in sizes:
        _apply(f"{where} [sizes.{size}]", params, sizes[size])

    given: list[str] = []
    if overrides:
        items = (
            list(overrides.items())
            if isinstance(overrides, Mapping)
            else [_parse_override(o) for o in overrides]
        )
        for key, value in items:
            if "." not in key:
                msg = f"override {key!r}: expected a dotted key section.knob (e.g. world.persons)"
                raise RecipeError(msg)
            _apply(f"{where} (override)", params, _nest(key, value))
            given.append(f"{key}={json.dumps(value)}")
    _check_consistency(where, params)
    return Recipe(
        name=name,
        size=size,
        params=params,
        source=where,
        description=str(meta.get("description", "")),
        overrides=tuple(given),
        bundled=path.resolve().parent == recipes_dir(),
    )
