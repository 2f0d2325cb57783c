"""Families of datasets in stored runs: a sweep over one recipe knob, or a size series.

A suite that varies one recipe knob (a noise rate, a hazard share) across otherwise equal
datasets is a sweep (:func:`find_sweep`, drawn by the degradation figure); one that
varies only the size is a scaling series (:func:`size_series`, drawn by the scaling
figure). Both are read from the recipe each run record stores with its dataset.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.report.records import dataset_key
from bench.run.results import canonical_json

__all__ = ["SIZE_KEYS", "Sweep", "find_sweep", "recipe_knobs", "size_series"]

#: Recipe keys that set the size of a dataset: a difference in them is scaling, not a sweep.
SIZE_KEYS = frozenset({"size", "world.persons", "persons", "n_records"})
#: Recipe keys that describe rather than parametrise a dataset.
_RECIPE_META = frozenset({"name", "description", "source", "path", "overrides", "fixture"})


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value


def _override_items(overrides: Any) -> dict[str, Any]:
    """``overrides`` of a recipe as ``{key: value}``: a mapping, or ``key=value`` strings.

    A string value that reads as JSON (``0.3``, ``true``) is taken as that value.
    """
    if isinstance(overrides, dict):
        return {str(k): v for k, v in overrides.items()}
    out: dict[str, Any] = {}
    if isinstance(overrides, list | tuple):
        for item in overrides:
            if isinstance(item, str) and "=" in item:
                k, v = item.split("=", 1)
                try:
                    out[k.strip()] = json.loads(v)
                except json.JSONDecodeError:
                    out[k.strip()] = v.strip()
    return out


def recipe_knobs(recipe: Any) -> dict[str, Any]:
    """The knobs of a dataset's recipe as ``{dotted.key: value}``.

    Uses the resolved ``params`` when the recipe stores them, else every non-descriptive
    key; ``size`` and ``key=value`` strings in ``overrides`` are included.
    """
    if not isinstance(recipe, dict):
        return {}
    flat: dict[str, Any] = {}
    params = recipe.get("params")
    if isinstance(params, dict):
        _flatten(params, "", flat)
    else:
        _flatten({k: v for k, v in recipe.items() if k not in _RECIPE_META}, "", flat)
    flat.update(_override_items(recipe.get("overrides")))
    if "size" in recipe:
        flat["size"] = recipe["size"]
    return flat


@dataclass(frozen=True)
class Sweep:
    """The recipe knob a suite varies, and its value on each swept dataset."""

    knob: str
    covaried: tuple[str, ...]
    values: dict[str, Any]  # fingerprint -> value

    @property
    def numeric(self) -> bool:
        """True when every value is a number (a numeric x axis)."""
        return all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in self.values.values()
        )


def _covarying_groups(knobs: dict[str, dict[str, Any]], keys: list[str]) -> list[list[str]]:
    """Keys that vary across the datasets, grouped when they split them the same way."""
    fps = sorted(knobs)
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for k in keys:
        vals = [canonical_json(knobs[fp].get(k)) for fp in fps]
        if k in SIZE_KEYS or len(set(vals)) < 2:
            continue
        first: dict[str, int] = {}
        groups[tuple(first.setdefault(v, len(first)) for v in vals)].append(k)
    return list(groups.values())


def find_sweep(records: Sequence[dict[str, Any]]) -> Sweep | None:
    """Detect the recipe knob varied across the datasets of ``records``.

    Keys that change together (the same partition of the datasets) count as one knob,
    named by the first; size keys never count. The datasets swept are those equal on
    every other key; the knob with the most distinct values wins (numeric first).
    """
    knobs: dict[str, dict[str, Any]] = {}
    for r in records:
        knobs.setdefault(dataset_key(r), recipe_knobs((r.get("dataset") or {}).get("recipe")))
    if len(knobs) < 2:
        return None
    keys = sorted({k for kn in knobs.values() for k in kn})
    best: tuple[tuple, Sweep] | None = None
    for ks in _covarying_groups(knobs, keys):
        rest = [k for k in keys if k not in ks]
        buckets: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for fp in sorted(knobs):
            buckets[tuple(canonical_json(knobs[fp].get(k)) for k in rest)].append(fp)
        for members in buckets.values():
            values = {fp: knobs[fp].get(ks[0]) for fp in members}
            sweep = Sweep(ks[0], tuple(ks[1:]), values)
            n_distinct = len({canonical_json(v) for v in values.values()})
            if n_distinct < 2:
                continue
            score = (n_distinct, sweep.numeric, len(members), ks[0])
            if best is None or score > best[0]:
                best = (score, sweep)
    return best[1] if best else None


def size_series(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs on datasets that differ only in size, from the largest such family.

    Datasets are grouped by their recipe knobs other than the size keys; the group with
    the most distinct record counts wins, so a noise sweep at one size does not blur the
    scaling lines. Datasets without a recipe form one group.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        knobs = recipe_knobs((r.get("dataset") or {}).get("recipe"))
        groups[canonical_json({k: v for k, v in knobs.items() if k not in SIZE_KEYS})].append(r)
    if not groups:
        return []

    def score(rs: list[dict[str, Any]]) -> tuple[int, int]:
        return (len({(x.get("dataset") or {}).get("n_records") for x in rs}), len(rs))

    return max(groups.values(), key=score)
