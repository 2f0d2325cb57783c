"""Run records: one JSON file per run, raw outputs as Parquet beside it.

Layout under a suite's results directory::

    results/<suite>/runs/<run_key>.json          the run record (flat, schema-versioned)
    results/<suite>/raw/<run_key>/clusters.parquet
    results/<suite>/raw/<run_key>/pairs.parquet  (matchers that emit pairs)
    results/<suite>/raw/<run_key>/training_records.parquet  (supervised matchers: the
                                                 records the evaluation leaves out)

Records are written atomically (temp file + rename), so an interrupted run never leaves
a half-written record, and raw outputs are moved into place before their record, so a
stored record always has its raw outputs (if the record cannot be written, the stored
outputs are put back). Records are strict JSON: a NaN or infinity is stored as ``null``. Load every record with
``read_json('results/**/runs/*.json')`` in DuckDB, or :func:`load_records`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from bench.data.dataset import write_json_atomic
from bench.run.suite import SuiteError

__all__ = [
    "SCHEMA_VERSION",
    "ResultsFolderError",
    "RunStore",
    "canonical_json",
    "finite_json",
    "folder_error",
    "load_records",
    "run_key",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


class ResultsFolderError(SuiteError):
    """A suite's results folder cannot take the run: another run holds it, or it cannot
    be written (read-only, disk full). The message names the folder and the cause.

    A :class:`~bench.run.suite.SuiteError`, so the command line reports it like the other
    problems with running a suite: the message, exit status 2, no traceback.
    """


def folder_error(root: Path, exc: OSError) -> ResultsFolderError:
    """The error for an ``OSError`` met while writing results folder ``root``."""
    what = f" ({exc.filename})" if exc.filename else ""
    msg = f"cannot write to the results folder {root}: {exc.strerror or exc}{what}"
    return ResultsFolderError(msg)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_key(
    *,
    dataset_fingerprint: str,
    matcher: str,
    params: dict[str, Any],
    repeat: int,
    version: str | None = None,
    seed: int | None = None,
    engine: str = "duckdb",
) -> str:
    """Deterministic id of a run: same dataset, matcher (and version), params, repeat, seed.

    A matcher whose ``version`` changes gets new keys, so its stored runs are not
    mistaken for runs of the new code. A run on another engine than DuckDB is another
    run (its key holds the engine; DuckDB runs keep the keys they always had).
    """
    facts: dict[str, Any] = {
        "dataset": dataset_fingerprint,
        "matcher": matcher,
        "version": version,
        "params": params,
        "repeat": repeat,
        "seed": seed,
    }
    if engine != "duckdb":
        facts["engine"] = engine
    text = canonical_json(facts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunStore:
    """The run records and raw outputs of one suite."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def runs_dir(self) -> Path:
        """Directory of the JSON run records."""
        return self.root / "runs"

    def record_path(self, key: str) -> Path:
        """Path of the JSON record of run ``key``."""
        return self.runs_dir / f"{key}.json"

    def raw_dir(self, key: str) -> Path:
        """Directory of the raw outputs of run ``key``."""
        return self.root / "raw" / key

    def new_staging_dir(self, key: str) -> Path:
        """A new empty folder, this process's own, where a worker writes the raw outputs
        of run ``key`` before the run is stored."""
        staging = self.root / "raw" / f".staging-{key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)  # a dead run's, with a recycled pid
        staging.mkdir(parents=True)
        return staging

    def exists(self, key: str) -> bool:
        """True when a record for ``key`` is stored."""
        return self.record_path(key).is_file()

    def read(self, key: str) -> dict[str, Any]:
        """The stored record of run ``key``.

        Raises
        ------
        ValueError
            The record is not valid JSON; the message names the file.
        """
        path = self.record_path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            msg = f"run record {path} is corrupt: {exc}"
            raise ValueError(msg) from exc

    def read_stored(self, key: str) -> dict[str, Any] | None:
        """The stored record of run ``key``, or ``None`` when there is none to use.

        A corrupt record (e.g. truncated by a full disk) is moved aside to
        ``<key>.json.corrupt`` with a warning, so the run counts as not stored and is
        run again.
        """
        if not self.exists(key):
            return None
        try:
            return self.read(key)
        except ValueError as exc:
            path = self.record_path(key)
            aside = path.with_name(path.name + ".corrupt")
            path.replace(aside)
            log.warning("%s; moved it to %s, run %s will be run again", exc, aside, key)
            return None

    def store(
        self, record: dict[str, Any], *, staged_raw: Path | None = None, new_run: bool = False
    ) -> Path:
        """Store a run record (and move its staged raw outputs into place first).

        ``new_run``: the record comes from a fresh execution, so raw outputs of an earlier
        record of the same key are dropped even when the new run has none (a re-run that
        failed); without it (``--recompute``) the stored raw outputs are kept.
        """
        key = record["run_key"]
        previous = None
        final = self.raw_dir(key)
        staged = staged_raw is not None and staged_raw.is_dir()
        if (staged or new_run) and final.exists():
            # keep the old outputs until the new record is written (--force re-runs)
            previous = final.with_name(f".previous-{key}")
            shutil.rmtree(previous, ignore_errors=True)
            final.replace(previous)
        try:
            if staged:
                staged_raw.replace(final)
            path = self.record_path(key)
            write_json_atomic(path, finite_json(record, key), allow_nan=False)
        except BaseException:
            # the record was not written: put the stored outputs back as they were
            if staged:
                shutil.rmtree(final, ignore_errors=True)
            if previous is not None:
                previous.replace(final)
            raise
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        return path

    def update(self, record: dict[str, Any]) -> Path:
        """Rewrite an existing record (e.g. after ``--recompute``), atomically."""
        return self.store(record)

    def records(self) -> list[dict[str, Any]]:
        """All stored records of this suite, sorted by start time."""
        return load_records(self.root)


def finite_json(value: Any, where: str) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (JSON ``null``).

    JSON has no NaN: a record holding one would not parse in strict readers (DuckDB's
    ``read_json``, browsers). Each replacement is logged with its place in ``where``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        log.warning("%s: non-finite value %r stored as null", where, value)
        return None
    if isinstance(value, dict):
        return {k: finite_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_records(root: str | Path) -> list[dict[str, Any]]:
    """Every run record under ``root`` (recursively), sorted by start time.

    A file that cannot be parsed is skipped with a warning naming it.
    """
    out = []
    for path in sorted(Path(root).rglob("runs/*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("skipping unreadable run record %s: %s", path, exc)
            continue
        rec.setdefault("_path", str(path))
        out.append(rec)
    return sorted(out, key=lambda r: (r.get("started_at") or "", r.get("run_key") or ""))
