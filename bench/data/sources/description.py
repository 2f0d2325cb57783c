"""The source description of a file recipe: resolved options and input checksums.

Stored as the manifest's ``recipe``; a dataset is rebuilt exactly when it changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data.dataset import file_sha256
from bench.data.sources.spec import FileDataError, FileRecipe
from bench.data.sources.validate import recipe_at


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
                f"{recipe_at(recipe.recipe_path)}: {what} {display!r} does not exist "
                f"(looked for {p}; relative paths are relative to the recipe's folder)"
            )
            raise FileDataError(msg)
        return {"path": display, "sha256": file_sha256(p), "bytes": p.stat().st_size}

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
