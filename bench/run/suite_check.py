"""Checking a suite against the matchers it names, before anything runs.

:func:`check_suite` reports every problem at once, each with the suite file and line:
unknown matcher names (with a close match), unknown or ill-typed parameters (against the
matcher's ``__init__`` signature and annotations), and parameters naming columns that no
generated dataset of the suite can have. ``idbench run`` calls it before it generates
data or stores anything, and exits with status 2 on a problem.
"""

from __future__ import annotations

import collections.abc as abc
import difflib
import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any

from bench.run.suite import MatcherSpec, Suite, SuiteError

__all__ = ["COLUMN_PARAMS", "check_suite"]


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
