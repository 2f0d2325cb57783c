"""How matchers look in a report: short labels, stable colours, and a style per lens.

A matcher configuration is labelled by its name plus the parameters that vary between
its configurations (:func:`short_labels`, through :func:`matcher_label`): the console,
the report, the figures and their JSON sidecars all show that one label. Colours are stable: the labels of all matchers of a suite are
sorted and mapped to a fixed palette (:func:`colour_map`), so a matcher has the same
colour in every figure of a report. Markers, line styles and bar hatches show the lens
(:data:`LENS_STYLES`): squares and dotted lines for baselines, circles and solid lines
for deterministic matchers, triangles and dashed lines for probabilistic ones, diamonds
and dash-dot lines for hybrids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.api import LENSES
from bench.run.results import canonical_json

__all__ = [
    "LENS_ORDER",
    "LENS_STYLES",
    "PALETTE",
    "UNSPECIFIED",
    "LensStyle",
    "colour_map",
    "config_key",
    "config_label",
    "format_value",
    "matcher_label",
    "short_labels",
]

#: tab10 followed by ten further distinct colours; labels beyond 20 cycle.
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
    "#8ca252",
    "#e7ba52",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
)

#: The lens of a matcher that declared none (or one not in :data:`bench.api.LENSES`).
UNSPECIFIED = "unspecified"

#: Lenses in the order legends, captions and tables list them.
LENS_ORDER: tuple[str, ...] = (*LENSES, UNSPECIFIED)


@dataclass(frozen=True)
class LensStyle:
    """How the matchers of one lens are drawn and tagged.

    Parameters
    ----------
    marker
        Matplotlib marker of their points.
    line
        Matplotlib line style of their lines.
    hatch
        Hatch of their bars (``None``: solid).
    short
        Tag in tables and legends (``det``, ``prob``...).
    """

    marker: str
    line: str | tuple[int, tuple[int, ...]]
    hatch: str | None
    short: str


LENS_STYLES: dict[str, LensStyle] = {
    "baseline": LensStyle("s", ":", "..", "baseline"),
    "deterministic": LensStyle("o", "-", None, "det"),
    "probabilistic": LensStyle("^", "--", "//", "prob"),
    "hybrid": LensStyle("D", "-.", "//", "hybrid"),
    UNSPECIFIED: LensStyle("X", (0, (3, 1, 1, 1, 1, 1)), "xx", UNSPECIFIED),
}

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

    Returns a mapping :func:`config_key` -> :func:`matcher_label`. A matcher run with one
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
        by_name.setdefault(str(m.get("name")), {})[canonical_json(params)] = params
        if "needs_labels" in (m.get("tags") or ()):
            supervised.add(str(m.get("name")))
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


def colour_map(labels: Iterable[str]) -> dict[str, str]:
    """A palette colour per label: the sorted distinct labels take the palette in order."""
    ordered = sorted(set(labels))
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(ordered)}
