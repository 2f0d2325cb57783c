"""Builders of tiny datasets with both lenses and IP evidence, for the lens metric tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data.dataset import Dataset, write_manifest

#: One record: (name, person, source, cluster, ts or None).
Row = tuple[str, int, str, str, datetime | None]
#: One evidence row: (record name, ip, first_seen, last_seen).
IpRow = tuple[str, str, datetime, datetime]


def _rid(names: Sequence[str]) -> dict[str, int]:
    """Record ids far beyond 32 bits, not contiguous, in row order."""
    return {name: 10**12 + 7919 * i for i, name in enumerate(names)}


def write_lens_run(
    root: Path, rows: Sequence[Row], ip_rows: Sequence[IpRow] | None = None
) -> tuple[Dataset, Path, Mapping[str, int]]:
    """Write a dataset (records, truth, optional ``tables/identifier_ip``) and a run's
    clusters under ``root``; return the dataset, the raw directory and name -> record id.
    """
    ids = _rid([r[0] for r in rows])
    (root / "ds" / "truth").mkdir(parents=True, exist_ok=True)
    (root / "raw").mkdir(parents=True, exist_ok=True)
    rid = pa.array([ids[r[0]] for r in rows], pa.int64())
    pq.write_table(
        pa.table(
            {
                "record_id": rid,
                "source": [r[2] for r in rows],
                "ts": pa.array([r[4] for r in rows], pa.timestamp("us")),
            }
        ),
        root / "ds" / "records.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "record_id": rid,
                "person_id": pa.array([r[1] for r in rows], pa.int64()),
                "household_id": pa.array([r[1] // 10 for r in rows], pa.int64()),
            }
        ),
        root / "ds" / "truth" / "records.parquet",
    )
    if ip_rows is not None:
        (root / "ds" / "tables").mkdir(exist_ok=True)
        pq.write_table(
            pa.table(
                {
                    "record_id": pa.array([ids[r[0]] for r in ip_rows], pa.int64()),
                    "ip": pa.array([r[1] for r in ip_rows], pa.string()),
                    "events": pa.array([1] * len(ip_rows), pa.int64()),
                    "first_seen": pa.array([r[2] for r in ip_rows], pa.timestamp("us")),
                    "last_seen": pa.array([r[3] for r in ip_rows], pa.timestamp("us")),
                }
            ),
            root / "ds" / "tables" / "identifier_ip.parquet",
        )
    pq.write_table(
        pa.table({"record_id": rid, "cluster_id": [r[3] for r in rows]}),
        root / "raw" / "clusters.parquet",
    )
    write_manifest(
        root / "ds",
        name="lens",
        kind="test",
        recipe={},
        seed=None,
        generator={"name": "tests", "version": "1"},
    )
    return Dataset.open(root / "ds"), root / "raw", ids


@pytest.fixture(scope="session")
def lens_run() -> Callable[..., tuple[Dataset, Path, Mapping[str, int]]]:
    """:func:`write_lens_run`, for tests (conftest helpers are not importable)."""
    return write_lens_run


def pairs_of(names: Sequence[str]) -> list[tuple[str, str]]:
    """Unordered pairs of ``names``."""
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


@pytest.fixture(scope="session")
def all_pairs() -> Callable[[Sequence[str]], list[tuple[str, str]]]:
    """:func:`pairs_of`."""
    return pairs_of


def brute_f(tp: int, pred: int, true: int) -> dict[str, Any]:
    """Pair precision / recall / F1 from counts, ``None`` where undefined (as core)."""
    return {
        "precision": tp / pred if pred else None,
        "recall": tp / true if true else None,
        "f1": 2 * tp / (pred + true) if pred + true else None,
    }


@pytest.fixture(scope="session")
def pair_scores() -> Callable[[int, int, int], dict[str, Any]]:
    """:func:`brute_f`."""
    return brute_f
