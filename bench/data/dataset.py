"""Datasets on disk: the layout every source (generated, FEBRL, user files) writes.

See ``docs/dataset-layout.md``. This module reads and validates a dataset directory,
computes its fingerprint and writes its manifest; it knows nothing about how the data
was produced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

__all__ = [
    "CHECKOUT",
    "FORMAT_VERSION",
    "Dataset",
    "DatasetError",
    "file_sha256",
    "fingerprint",
    "open_stored_path",
    "stored_path",
    "write_json_atomic",
    "write_manifest",
]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
RECORDS = "records.parquet"
TABLES_DIR = "tables"
TRUTH_DIR = "truth"
TRUTH_RECORDS = f"{TRUTH_DIR}/records.parquet"
REQUIRED_RECORD_COLUMNS = ("record_id", "source")
REQUIRED_TRUTH_COLUMNS = ("record_id", "person_id")


#: The checkout idbench runs from; dataset paths inside it are stored relative to it.
CHECKOUT = Path(__file__).resolve().parents[2]


def stored_path(root: Path) -> str:
    """How a run record names a dataset folder: relative to the checkout when inside it.

    Committed run records must not carry a path of the machine that made them; a
    dataset outside the checkout (your own data elsewhere) keeps its absolute path.
    """
    resolved = Path(root).resolve()
    try:
        return resolved.relative_to(CHECKOUT).as_posix()
    except ValueError:
        return str(resolved)


def open_stored_path(path: str) -> Path:
    """The folder a run record's ``dataset.path`` names (relative paths: to the checkout)."""
    p = Path(path)
    return p if p.is_absolute() else CHECKOUT / p


class DatasetError(ValueError):
    """A dataset directory is missing something or is malformed."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's contents, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_files(root: Path) -> list[Path]:
    """All Parquet files of a dataset, sorted by relative path."""
    return sorted(p for p in root.rglob("*.parquet") if p.is_file())


def fingerprint(root: str | Path) -> str:
    """SHA-256 over the sorted relative paths and contents of every Parquet file."""
    root = Path(root)
    h = hashlib.sha256()
    for path in parquet_files(root):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(file_sha256(path).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def write_json_atomic(path: str | Path, data: Any, *, allow_nan: bool = True) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one.

    The file gets the permissions of any file the user creates (``0o666`` less the
    umask), not the private ``0o600`` of a temp file. With ``allow_nan=False`` a NaN or
    infinity raises ``ValueError`` instead of being written as invalid JSON.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0o022)  # reading the umask means setting it; restored at once
    os.umask(umask)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~umask)
            json.dump(data, fh, indent=2, sort_keys=True, default=str, allow_nan=allow_nan)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(
    root: str | Path,
    *,
    name: str,
    kind: str,
    recipe: dict[str, Any],
    seed: int | None,
    generator: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fingerprint the Parquet files under ``root`` and write ``manifest.json``."""
    root = Path(root)
    rows = {
        p.relative_to(root).with_suffix("").as_posix(): pq.ParquetFile(p).metadata.num_rows
        for p in parquet_files(root)
    }
    manifest = {
        "format": FORMAT_VERSION,
        "name": name,
        "kind": kind,
        "recipe": recipe,
        "seed": seed,
        "generator": generator,
        "fingerprint": fingerprint(root),
        "rows": rows,
        **(extra or {}),
    }
    write_json_atomic(root / "manifest.json", manifest)
    return manifest


@dataclass(frozen=True)
class Dataset:
    """A dataset directory in the documented layout.

    Use :meth:`open`, which validates the layout and reads the manifest.
    """

    root: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, root: str | Path) -> Dataset:
        """Open and validate a dataset directory.

        Raises
        ------
        DatasetError
            Naming the directory and what is missing or wrong.
        """
        root = Path(root)
        if not root.is_dir():
            msg = f"dataset {root}: no such directory"
            raise DatasetError(msg)
        mpath = root / "manifest.json"
        if not mpath.is_file():
            msg = f"dataset {root}: manifest.json is missing (see docs/dataset-layout.md)"
            raise DatasetError(msg)
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            msg = f"dataset {root}: manifest.json is not valid JSON ({exc})"
            raise DatasetError(msg) from exc
        for key in ("name", "fingerprint"):
            if key not in manifest:
                msg = f"dataset {root}: manifest.json lacks key {key!r}"
                raise DatasetError(msg)
        ds = cls(root=root, manifest=manifest)
        ds._check_columns(ds.records_path, REQUIRED_RECORD_COLUMNS)
        ds._check_columns(ds.truth_path, REQUIRED_TRUTH_COLUMNS)
        return ds

    def _check_columns(self, path: Path, required: tuple[str, ...]) -> None:
        rel = path.relative_to(self.root)
        if not path.is_file():
            msg = f"dataset {self.root}: {rel} is missing"
            raise DatasetError(msg)
        names = pq.read_schema(path).names
        missing = [c for c in required if c not in names]
        if missing:
            msg = f"dataset {self.root}: {rel} lacks column(s) {', '.join(missing)}"
            raise DatasetError(msg)

    @property
    def name(self) -> str:
        """The dataset's name from its manifest."""
        return str(self.manifest["name"])

    @property
    def fingerprint(self) -> str:
        """The fingerprint recorded in the manifest."""
        return str(self.manifest["fingerprint"])

    @property
    def records_path(self) -> Path:
        """Path of the records to resolve."""
        return self.root / RECORDS

    @property
    def truth_path(self) -> Path:
        """Path of the record -> person/household truth."""
        return self.root / TRUTH_RECORDS

    @property
    def tables(self) -> dict[str, Path]:
        """Auxiliary input tables by logical name."""
        tdir = self.root / TABLES_DIR
        return {p.stem: p for p in sorted(tdir.glob("*.parquet"))} if tdir.is_dir() else {}

    @property
    def truth_tables(self) -> dict[str, Path]:
        """Truth tables by logical name (``records`` included)."""
        return {p.stem: p for p in sorted((self.root / TRUTH_DIR).glob("*.parquet"))}

    @property
    def n_records(self) -> int:
        """Number of records to resolve."""
        return pq.ParquetFile(self.records_path).metadata.num_rows

    def summary(self) -> dict[str, Any]:
        """What a run record stores about its dataset."""
        m = self.manifest
        return {
            "name": self.name,
            "path": stored_path(self.root),
            "kind": m.get("kind"),
            "fingerprint": self.fingerprint,
            "seed": m.get("seed"),
            "generator": m.get("generator"),
            "recipe": m.get("recipe"),
            "rows": m.get("rows"),
            "n_records": self.n_records,
        }
