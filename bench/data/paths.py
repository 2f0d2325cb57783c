"""Where recipes and datasets live: the bundled recipes, and the rule for dataset names.

A recipe's ``name`` becomes part of a folder name under ``datasets/generated``, so it
must be a plain name: :func:`name_problem` says what is wrong with one, and
:func:`plain_folder` refuses, where the folder is built, anything that would leave its
root.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.data.dataset import DatasetError

__all__ = ["NAME_RULE", "bundled_dir", "name_problem", "plain_folder"]

#: What a recipe's ``name`` may contain, as said in error messages.
NAME_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def bundled_dir() -> Path:
    """The folder of recipes shipped with idbench (``datasets/`` in a checkout).

    idbench runs from a source checkout (``make run``; editable install), where this is
    ``<repo>/datasets``; an installed wheel would carry them as ``bench/_datasets``.
    """
    package = Path(__file__).resolve().parents[1]  # bench/
    checkout = package.parent / "datasets"
    return checkout if checkout.is_dir() else package / "_datasets"


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a dataset name, or ``None`` when it is fine.

    A name is one folder name: no path separator, no ``..``, no leading dot (which
    would hide it, and which the temporary folders of a build use).
    """
    if _NAME.fullmatch(name) and ".." not in name:
        return None
    return (
        f"{name!r} is not a valid dataset name: use only {NAME_RULE}, without '..' "
        "(the name becomes a folder under datasets/generated, so it cannot be a path)"
    )


def plain_folder(folder: str) -> str:
    """``folder`` itself when it is one plain folder name, so ``root / folder`` stays in ``root``.

    Raises
    ------
    DatasetError
        When ``folder`` is empty, ``.`` or ``..``, absolute, or holds a path separator.
    """
    if folder in ("", ".", "..") or "/" in folder or "\\" in folder or Path(folder).name != folder:
        msg = (
            f"dataset folder {folder!r} is not a plain folder name and would lie outside "
            f"its root folder; give the recipe a name of {NAME_RULE}"
        )
        raise DatasetError(msg)
    return folder
