"""One display label per matcher configuration, for the console, the report and figures.

The run record's ``matcher.label`` (the matcher's repr with every resolved parameter)
stays for provenance; what a person reads comes from :func:`matcher_label` /
:func:`short_labels` here, so the console's progress lines and the report name a run the
same way (``exact keys=email``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bench.run.results import canonical_json

__all__ = [
    "config_key",
    "config_label",
    "engine_of",
    "format_value",
    "matcher_label",
    "record_key",
    "record_name",
    "short_labels",
]

#: Longest label shown; longer ones are cut with an ellipsis.
_LABEL_MAX = 40


def format_value(value: Any) -> str:
    """A parameter value as a label shows it: ``["email", "phone"]`` -> ``email+phone``."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "+".join(
            "|".join(map(format_value, v)) if isinstance(v, list | tuple) else format_value(v)
            for v in value
        )
    if isinstance(value, dict):
        return canonical_json(value)
    return str(value)


def config_label(name: str, params: Mapping[str, Any], keys: Iterable[str]) -> str:
    """``name`` followed by ``key=value`` for the ``keys`` of ``params`` (``exact keys=email``)."""
    parts = [f"{k}={format_value(params[k])}" for k in keys if k in params]
    return " ".join([name, ", ".join(parts)]) if parts else name


def config_key(name: str, params: Mapping[str, Any]) -> str:
    """Identity of a matcher configuration: its name and canonical parameters."""
    return f"{name}\x00{canonical_json(params)}"


def engine_of(rec: Mapping[str, Any]) -> str:
    """The engine a run record's matcher ran on (records before engines: ``duckdb``)."""
    return str((rec.get("engine") or {}).get("kind") or "duckdb")


def record_name(rec: Mapping[str, Any]) -> str:
    """The matcher name a record is labelled by: ``cascade``, or ``cascade [spark]``
    for a run on another engine than DuckDB, so one report can hold both."""
    name = str((rec.get("matcher") or {}).get("name"))
    kind = engine_of(rec)
    return name if kind == "duckdb" else f"{name} [{kind}]"


def record_key(rec: Mapping[str, Any]) -> str:
    """:func:`config_key` of a run record's configuration (engine included)."""
    return config_key(record_name(rec), (rec.get("matcher") or {}).get("params") or {})


def matcher_label(
    name: str,
    params: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    *,
    supervised: bool = False,
) -> str:
    """The display label of a matcher configuration (console, report, figures, sidecars).

    ``name`` and the parameters ``keys`` (default: every given parameter, sorted), e.g.
    ``exact keys=email``; a supervised matcher (tag ``needs_labels``) is marked
    ``(held-out)``: its metrics cover the persons it did not learn from. Labels longer
    than :data:`_LABEL_MAX` are cut with an ellipsis. The record's ``matcher.label``
    (the matcher's repr with every resolved parameter) is kept for provenance only.
    """
    shown = f"{name} (held-out)" if supervised else name
    label = config_label(shown, params, sorted(params) if keys is None else keys)
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "\u2026"


def short_labels(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The label of every matcher configuration of ``records``: name plus the params that vary.

    Returns a mapping :func:`record_key` -> :func:`matcher_label`. A matcher run with one
    parameter set is labelled by its name alone; otherwise only the parameters whose
    values differ between its parameter sets are shown (``exact keys=email``). Two
    configurations whose cut labels coincide are numbered (``label #2``). The console
    labels the runs of a suite with this same function, so it shows the report's labels.
    """
    by_name: dict[str, dict[str, Mapping[str, Any]]] = {}
    supervised: set[str] = set()
    for rec in records:
        m = rec.get("matcher") or {}
        params = m.get("params") or {}
        name = record_name(rec)
        by_name.setdefault(name, {})[canonical_json(params)] = params
        if "needs_labels" in (m.get("tags") or ()):
            supervised.add(name)
    out: dict[str, str] = {}
    for name, configs in by_name.items():
        varying = _varying_keys(list(configs.values()))
        for params in configs.values():
            out[config_key(name, params)] = matcher_label(
                name, params, varying, supervised=name in supervised
            )
    return _number_repeated(out)


def _varying_keys(configs: list[Mapping[str, Any]]) -> list[str]:
    """Parameter names (sorted) whose values differ between the configurations."""
    keys = sorted({k for p in configs for k in p})
    return [k for k in keys if len({canonical_json(p.get(k)) for p in configs}) > 1]


def _number_repeated(labels: dict[str, str]) -> dict[str, str]:
    """Truncation may make two labels equal: number the later ones (``label #2``)."""
    out = dict(labels)
    seen: dict[str, int] = {}
    for key in sorted(out):
        label = out[key]
        if label in seen:
            seen[label] += 1
            out[key] = f"{label} #{seen[label]}"
        else:
            seen[label] = 1
    return out
