"""Saving a drawn figure: ``<stem>.png`` (150 dpi), ``<stem>.svg`` and a JSON sidecar.

The sidecar names the runs behind the figure (run ids and keys), its title and caption,
the colour of every matcher in it and any facts the figure computed (``data``).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt

from bench.report.figures.drawing import Drawing, Rendered
from bench.report.records import Results

__all__ = ["DPI", "remove_saved", "save_drawing"]

DPI = 150

_EXTENSIONS = ("png", "svg", "json")


def save_drawing(
    drawing: Drawing, name: str, out_dir: Path, results: Results, *, stem: str | None = None
) -> Rendered:
    """Save a drawing as PNG, SVG and a JSON sidecar; close the figure.

    Parameters
    ----------
    drawing
        The drawn figure.
    name
        The figure's name (a key of :data:`bench.report.figures.FIGURES`).
    out_dir
        Directory the three files go to (created if needed).
    results
        The results drawn (suite name and matcher colours for the sidecar).
    stem
        File name without extension (default ``name``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or name
    files = {ext: out_dir / f"{stem}.{ext}" for ext in _EXTENSIONS}
    # a fixed date keeps the SVG byte-identical across rebuilds of the same results
    drawing.fig.savefig(files["png"], dpi=DPI, metadata={"Software": None})
    drawing.fig.savefig(files["svg"], metadata={"Date": None, "Creator": None})
    plt.close(drawing.fig)
    runs = sorted(drawing.runs, key=lambda r: (r.get("started_at") or "", r.get("run_key")))
    sidecar = {
        "figure": name,
        "title": drawing.title,
        "suite": results.suite,
        "caption": drawing.caption,
        "run_ids": [r.get("run_id") for r in runs],
        "run_keys": [r.get("run_key") for r in runs],
        "colours": {lab: results.colour(lab) for lab in sorted(set(drawing.labels))},
        "files": {k: p.name for k, p in files.items() if k != "json"},
        **({"data": drawing.data} if drawing.data else {}),
    }
    files["json"].write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    return Rendered(name, drawing.title, drawing.caption, files, sidecar["run_ids"])


def remove_saved(out_dir: Path, stem: str) -> None:
    """Delete the files of ``stem`` an earlier build saved, if any."""
    for ext in _EXTENSIONS:
        (out_dir / f"{stem}.{ext}").unlink(missing_ok=True)
