"""What a run process may see: its inputs staged apart from the dataset and its truth.

The worker gets no path into the dataset folder. Before it starts, the runner stages the
records and auxiliary tables (hard links, or copies across file systems) and, for a
matcher tagged ``needs_labels``, its training labels into a per-run ``inputs`` folder;
the truth stays behind, and the runner evaluates the raw outputs against it only once
the run process has ended. The worker runs the matcher with the inputs folder as its
working directory, on a DuckDB connection confined to that folder
(:func:`bench.sql.engine.confine`).

This keeps the truth out of reach of SQL and of paths the matcher is given; it is no
operating-system sandbox: plain Python in the matcher can still open any file its user
may read.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bench.data.dataset import Dataset

__all__ = ["LABELS_FILE", "RECORDS_FILE", "TABLES_DIR", "stage_inputs", "staged_inputs"]

RECORDS_FILE = "records.parquet"
TABLES_DIR = "tables"
LABELS_FILE = "labels.parquet"


def _place(source: Path, target: Path) -> None:
    """A hard link of ``source`` at ``target``, or a copy where links cannot go."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, target)


def stage_inputs(dataset: Dataset, folder: Path, labels: pa.Table | None = None) -> None:
    """Stage what a run of ``dataset`` may read into ``folder`` (created).

    Parameters
    ----------
    dataset
        The dataset whose records and auxiliary tables the run resolves.
    folder
        A new folder of the run's own; it gets ``records.parquet``, ``tables/*.parquet``
        and, when ``labels`` is given, ``labels.parquet``.
    labels
        A supervised matcher's training labels (:func:`bench.data.labels.training_sample`).
    """
    (folder / TABLES_DIR).mkdir(parents=True)
    _place(dataset.records_path, folder / RECORDS_FILE)
    for name, path in dataset.tables.items():
        _place(path, folder / TABLES_DIR / f"{name}.parquet")
    if labels is not None:
        pq.write_table(labels, folder / LABELS_FILE)


def staged_inputs(folder: Path) -> tuple[Path, dict[str, Path], Path | None]:
    """``(records, tables by name, labels or None)`` staged in ``folder``."""
    tables = {p.stem: p for p in sorted((folder / TABLES_DIR).glob("*.parquet"))}
    labels = folder / LABELS_FILE
    return folder / RECORDS_FILE, tables, labels if labels.is_file() else None
