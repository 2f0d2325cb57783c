"""The report of one suite, built from its stored run records only.

:func:`build_report` reads ``results/<suite>/runs/*.json``, draws the figures of
:mod:`bench.report.figures` into ``results/<suite>/figures/`` and writes two documents
beside them with the same content (:mod:`bench.report.document`):

- ``report.md``: Markdown, figures linked as ``figures/<name>.png``;
- ``report.html``: one self-contained file (figures embedded as base64 PNG, inline CSS,
  no external references) to attach to an issue or open offline.

Sections (:mod:`bench.report.findings`, :mod:`bench.report.sections`,
:mod:`bench.report.results_section`): the findings per population first, then datasets,
results per dataset (with, where the suite has a supervised matcher, every matcher
scored on the same held-out persons), the error-explaining tables, failed and skipped
runs with their reasons, figures with captions generated from the data (figures without
data are listed with the runs that would produce them), and the environment the runs
executed in. ``summary.json`` beside them holds the variance over repeats
(:func:`bench.metrics.aggregate.aggregate`).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from bench.metrics import aggregate
from bench.report import sections
from bench.report.document import Block, to_html, to_markdown
from bench.report.figures import render_all
from bench.report.findings import findings_section
from bench.report.records import Results
from bench.report.results_section import results_section

__all__ = ["build_report"]

log = logging.getLogger(__name__)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _report_blocks(results: Results, suite_dir: Path, title: str) -> list[Block]:
    """Every block of the report, figures drawn on the way."""
    blocks = [Block("h1", title)]
    if not results.records:
        return [
            *blocks,
            Block("p", f"No run records under `{suite_dir / 'runs'}`: run the suite first."),
        ]
    datasets = sections.collect_datasets(results)
    rendered = render_all(results, suite_dir / "figures")
    return [
        *blocks,
        *sections.summary_section(results, datasets),
        *findings_section(results, datasets),
        *sections.dataset_section(datasets),
        *results_section(results, datasets),
        *sections.depth_section(results, datasets),
        *sections.failures_section(results),
        *sections.figures_section(rendered, suite_dir),
        *sections.environment_section(results),
    ]


def build_report(suite_dir: Path) -> Path:
    """Build ``report.md`` and ``report.html`` for the suite stored under ``suite_dir``.

    Parameters
    ----------
    suite_dir
        The suite's results directory (``results/<suite>``), holding ``runs/*.json``.

    Returns
    -------
    Path
        The self-contained ``report.html`` (``report.md`` is written beside it, figures
        under ``figures/``).
    """
    suite_dir = Path(suite_dir)
    results = Results.load(suite_dir)
    title = f"idbench report: suite {results.suite}"
    blocks = _report_blocks(results, suite_dir, title)
    suite_dir.mkdir(parents=True, exist_ok=True)
    # Mean, sd and 95% interval per (dataset, matcher, metric): the stored variance.
    summary = aggregate.aggregate(results.records, dataset_key="name") if results.records else []
    _write_atomic(
        suite_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True, default=str)
    )
    _write_atomic(suite_dir / "report.md", to_markdown(blocks))
    out = suite_dir / "report.html"
    _write_atomic(out, to_html(blocks, title))
    log.info("report written to %s", out)
    return out
