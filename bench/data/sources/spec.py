"""The validated form of a file or FEBRL recipe, and the columns a dataset may have."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data.dataset import DatasetError

#: Kinds handled here; recipes without ``kind`` or with ``kind = "generated"`` are not.
KINDS = frozenset({"file", "febrl"})

#: Attribute columns of ``records.parquet`` documented in docs/dataset-layout.md, in the
#: order they are written. Other names are allowed (kept as VARCHAR) but not recognised.
CANONICAL_COLUMNS = (
    "given_name",
    "middle_name",
    "family_name",
    "dob",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    "region",
    "country",
    "customer_no",
    "loyalty_id",
    "account_id",
    "cookie_id",
    "maid",
    "ts",
    "amount",
    "device_type",
    "os",
    "browser",
    "user_agent",
)
#: Columns the loader writes itself; a mapping may not target them.
RESERVED_COLUMNS = ("record_id", "source", "orig_id")


class FileDataError(DatasetError):
    """A recipe or one of its input files is wrong; the message says where and what to do."""


@dataclass(frozen=True)
class FileSpec:
    """One input file of a recipe, with every option resolved."""

    path: Path
    display: str  # the path as the user wrote it (stored in the manifest)
    source: str
    format: str
    encoding: str
    delimiter: str
    id_column: str
    truth_column: str | None
    columns: dict[str, str] = field(default_factory=dict)  # user column -> idbench column


@dataclass(frozen=True)
class LinksSpec:
    """A file of true links: one row per pair of record ids that are the same entity."""

    path: Path
    display: str
    format: str
    encoding: str
    delimiter: str
    left: str
    right: str
    left_source: str | None
    right_source: str | None


@dataclass(frozen=True)
class FileRecipe:
    """A validated file or FEBRL recipe."""

    name: str
    kind: str
    recipe_path: Path
    description: str
    files: tuple[FileSpec, ...]
    truth_pattern: str | None
    links: LinksSpec | None
    date_format: str
    timestamp_format: str | None
    origin: dict[str, Any] = field(default_factory=dict)  # e.g. the recordlinkage version

    @property
    def targets(self) -> list[str]:
        """The attribute columns written to records.parquet, canonical ones first."""
        names = {t for f in self.files for t in f.columns.values()}
        extras = [t for f in self.files for t in f.columns.values() if t not in CANONICAL_COLUMNS]
        return [c for c in CANONICAL_COLUMNS if c in names] + list(dict.fromkeys(extras))
