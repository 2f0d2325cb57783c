"""Drawing the figures of a suite: all of them for the report, or one for ``idbench plot``."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.report.figures.drawing import FigureFunc, FigureUnavailable, PlotError, Rendered, Skip
from bench.report.figures.registry import FIGURES, PER_DATASET
from bench.report.figures.save import remove_saved, save_drawing
from bench.report.records import Results, dataset_key

__all__ = ["plot_one", "render_all"]

log = logging.getLogger(__name__)


def render_all(results: Results, out_dir: Path) -> dict[str, Rendered | Skip]:
    """Draw every figure of :data:`FIGURES` into ``out_dir``; skip those without data.

    Figures of :data:`PER_DATASET` are drawn once per dataset, each file named after its
    dataset (``pareto-<dataset>``), so no file silently stands for one of several.
    Files of a figure that is skipped now but was drawn by an earlier build are removed,
    so ``out_dir`` only holds figures of the current results.
    """
    out: dict[str, Rendered | Skip] = {}
    names = {dataset_key(r): str((r.get("dataset") or {}).get("name")) for r in results.ok()}
    primary = results.primary_dataset()
    # the primary dataset first, then the others
    datasets = sorted(names.items(), key=lambda kv: (kv[0] != primary, kv[1]))
    for name, func in FIGURES.items():
        if name in PER_DATASET:
            out.update(_render_per_dataset(results, name, func, datasets, out_dir))
            continue
        drawn = func(results)
        if isinstance(drawn, Skip):
            log.info("figure %s not drawn: %s (%s)", name, drawn.reason, drawn.hint)
            remove_saved(out_dir, name)
            out[name] = drawn
        else:
            out[name] = save_drawing(drawn, name, out_dir, results)
    return out


def _render_per_dataset(
    results: Results,
    name: str,
    func: FigureFunc,
    datasets: list[tuple[str, str]],
    out_dir: Path,
) -> dict[str, Rendered | Skip]:
    """Draw ``name`` per dataset, as ``<name>-<dataset>``."""
    for stale in out_dir.glob(f"{name}*.*"):
        stale.unlink()
    out: dict[str, Rendered | Skip] = {}
    last_skip: Skip | None = None
    try:
        for fp, ds_name in datasets:
            results.focus = fp
            drawn = func(results)
            if isinstance(drawn, Skip):
                last_skip = drawn
                log.info("figure %s not drawn for %s: %s", name, ds_name, drawn.reason)
                continue
            stem = f"{name}-{ds_name}"
            out[stem] = save_drawing(drawn, name, out_dir, results, stem=stem)
    finally:
        results.focus = None
    if not out and last_skip is not None:
        out[name] = last_skip
    return out


def _destination(suite_dir: Path, out: Path | None) -> tuple[Path, str | None]:
    """Directory and file stem of ``idbench plot --out`` (a directory or a .png/.svg path)."""
    if out is None:
        return suite_dir / "figures", None
    if Path(out).suffix.lower() in (".png", ".svg"):
        return Path(out).parent, Path(out).stem
    return Path(out), None


def plot_one(suite_dir: Path, figure: str, out: Path | None = None) -> list[Path]:
    """Draw one figure of a suite's stored results; return the files written.

    Parameters
    ----------
    suite_dir
        The suite's results directory (``results/<suite>``).
    figure
        A key of :data:`FIGURES`.
    out
        Output directory (default ``<suite_dir>/figures``), or a file path ending in
        ``.png`` or ``.svg`` whose stem names the three files written beside it.

    Raises
    ------
    PlotError
        Unknown figure name, or no run records under ``suite_dir``.
    FigureUnavailable
        The records lack the figure's data; the message says which runs add it.
    """
    if figure not in FIGURES:
        msg = f"unknown figure {figure!r} (known: {', '.join(FIGURES)})"
        raise PlotError(msg)
    suite_dir = Path(suite_dir)
    results = Results.load(suite_dir)
    if not results.records:
        msg = f"no run records under {suite_dir / 'runs'}: run the suite first (`idbench run`)"
        raise PlotError(msg)
    out_dir, stem = _destination(suite_dir, out)
    drawn = FIGURES[figure](results)
    if isinstance(drawn, Skip):
        msg = f"figure {figure!r} cannot be drawn from {suite_dir}: {drawn.reason}. To get it: {drawn.hint}"
        raise FigureUnavailable(msg)
    rendered = save_drawing(drawn, figure, out_dir, results, stem=stem)
    return [rendered.files["png"], rendered.files["svg"], rendered.files["json"]]
