"""Run records: one JSON file per run, raw outputs as Parquet beside it.

Layout under a suite's results directory::

    results/<suite>/runs/<run_key>.json          the run record (flat, schema-versioned)
    results/<suite>/raw/<run_key>/clusters.parquet
    results/<suite>/raw/<run_key>/pairs.parquet  (matchers that emit pairs)
    results/<suite>/raw/<run_key>/training_records.parquet  (supervised matchers: the
                                                 records the evaluation leaves out)

Records are written atomically (temp file + rename), so an interrupted run never leaves
a half-written record, and raw outputs are moved into place before their record, so a
stored record always has its raw outputs. Load every record with
``read_json('results/**/runs/*.json')`` in DuckDB, or :func:`load_records`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from bench.data.dataset import write_json_atomic

__all__ = ["SCHEMA_VERSION", "RunStore", "canonical_json", "load_records", "run_key"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


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
) -> str:
    """Deterministic id of a run: same dataset, matcher (and version), params, repeat, seed.

    A matcher whose ``version`` changes gets new keys, so its stored runs are not
    mistaken for runs of the new code.
    """
    text = canonical_json(
        {
            "dataset": dataset_fingerprint,
            "matcher": matcher,
            "version": version,
            "params": params,
            "repeat": repeat,
            "seed": seed,
        }
    )
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

    def staging_dir(self, key: str) -> Path:
        """Where a worker writes raw outputs before the run is stored."""
        return self.root / "raw" / f".staging-{key}"

    def exists(self, key: str) -> bool:
        """True when a record for ``key`` is stored."""
        return self.record_path(key).is_file()

    def read(self, key: str) -> dict[str, Any]:
        """The stored record of run ``key``."""
        return json.loads(self.record_path(key).read_text(encoding="utf-8"))

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
        if staged:
            staged_raw.replace(final)
        path = self.record_path(key)
        write_json_atomic(path, record)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        return path

    def update(self, record: dict[str, Any]) -> Path:
        """Rewrite an existing record (e.g. after ``--recompute``), atomically."""
        return self.store(record)

    def records(self) -> list[dict[str, Any]]:
        """All stored records of this suite, sorted by start time."""
        return load_records(self.root)


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
