"""Where the bundled recipes live, for generated presets and file/FEBRL recipes alike."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_dir"]


def bundled_dir() -> Path:
    """The folder of recipes shipped with idbench (``datasets/`` in a checkout).

    idbench runs from a source checkout (``make run``; editable install), where this is
    ``<repo>/datasets``; an installed wheel would carry them as ``bench/_datasets``.
    """
    package = Path(__file__).resolve().parents[1]  # bench/
    checkout = package.parent / "datasets"
    return checkout if checkout.is_dir() else package / "_datasets"
