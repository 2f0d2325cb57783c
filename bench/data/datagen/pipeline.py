"""Recipe + seed -> dataset directory: the generation steps in their fixed draw order.

Every step draws from the one generator made from the seed, so the order of the steps
below is part of what a seed fixes: world, first-party sources, cookies, mobile ad ids,
evidence. Changing it changes the bytes (bump :data:`GENERATOR_VERSION`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.data.datagen import anonymous, sources
from bench.data.datagen._util import ParquetSink, write_frame
from bench.data.datagen.network import Networks
from bench.data.datagen.truth import (
    HAZARDS_SCHEMA,
    TRUTH_RECORDS_SCHEMA,
    HazardTags,
    persons_frame,
    write_identifiers,
)
from bench.data.datagen.world import World, build_world
from bench.data.dataset import write_manifest
from bench.data.recipes import Recipe, load_recipe

log = logging.getLogger(__name__)

#: Bump when the same recipe + seed would produce different bytes.
GENERATOR_VERSION = "2"

Progress = Callable[[str, float], None]


def _noop(_phase: str, _frac: float) -> None:
    pass


class _RecordWriter:
    """Appends rendered blocks to ``records.parquet`` and ``truth/records.parquet``.

    Record ids are numbered in write order from 1; hazard tags and per-source counts
    are collected for the truth tables and the manifest.
    """

    def __init__(self, root: Path, w: World) -> None:
        self.w = w
        self.records = ParquetSink(root / "records.parquet", sources.RECORD_SCHEMA)
        self.truth = ParquetSink(root / "truth" / "records.parquet", TRUTH_RECORDS_SCHEMA)
        self.hazards = HazardTags()
        self.counts: dict[str, int] = {}
        self.next_id = 1

    def emit(self, block: sources.Rendered) -> np.ndarray:
        """Write one source's block; return the record ids given to its rows."""
        n = len(block.person)
        rid = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        frame = block.frame.with_columns(
            pl.Series("record_id", rid), pl.lit(block.source).alias("source")
        )
        self.records.write(frame)
        self.truth.write(
            pl.DataFrame(
                {
                    "record_id": rid,
                    "person_id": block.person.astype(np.int64) + 1,
                    "household_id": self.w.p_hh[block.person].astype(np.int64) + 1,
                }
            )
        )
        self.hazards.add(rid, block.hazards)
        self.counts[block.source] = n
        return rid

    def close(self) -> None:
        """Finish both Parquet files."""
        self.records.close()
        self.truth.close()


@dataclass
class _AnonymousRows:
    """World rows of the cookie and mobile-ad-id records, and their first record ids."""

    cookie_rows: np.ndarray | None = None
    cookie_rid0: int = 0
    maid_rows: np.ndarray | None = None
    maid_rid0: int = 0


def generate(
    recipe: Recipe,
    *,
    seed: int,
    out: Path,
    progress: Progress | None = None,
) -> Path:
    """Generate the dataset for ``recipe`` and ``seed`` into directory ``out``.

    The directory is built next to ``out`` and moved into place when complete, so a
    crashed run never leaves a half-written dataset with a manifest.

    Parameters
    ----------
    recipe
        A resolved recipe from :func:`bench.data.recipes.load_recipe`.
    seed
        Seed of the one random generator every step draws from.
    out
        Target directory (replaced if it exists).
    progress
        Called with (phase description, fraction done in [0, 1]).

    Returns
    -------
    Path
        ``out``.
    """
    report = progress or _noop
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t_start = time.perf_counter()
    src = recipe.params["sources"]
    rng = np.random.default_rng(seed)

    report("simulating the world", 0.0)
    w = build_world(rng, recipe.params)
    # Only logins and anonymous evidence carry IP addresses: a first-party-only recipe
    # needs no networks, so its size is not bounded by the address ranges they need.
    uses_ips = "login" in src["first_party"] or bool(src["evidence"] and src["anonymous"])
    nets = Networks(w) if uses_ips else None
    report("rendering first-party sources", 0.15)
    writer = _RecordWriter(tmp, w)
    _render_first_party(rng, w, nets, writer, src["first_party"], report)
    rows = _render_anonymous(rng, w, writer, src["anonymous"])
    writer.close()
    report("rendered anonymous identifiers", 0.4)
    if nets is not None and src["evidence"] and src["anonymous"]:
        _write_evidence(rng, w, nets, tmp, writer.hazards, rows, report)

    report("writing truth", 0.85)
    write_frame(tmp / "truth" / "hazards.parquet", writer.hazards.frame(), HAZARDS_SCHEMA)
    write_identifiers(w, tmp / "truth" / "identifiers.parquet", rows.cookie_rows, rows.maid_rows)
    write_frame(tmp / "truth" / "persons.parquet", persons_frame(w))

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    elapsed = time.perf_counter() - t_start
    _write_manifest(out, recipe, seed, w, writer.counts)
    report("done", 1.0)
    log.info("generated %s in %.1f s (%d records)", out, elapsed, writer.next_id - 1)
    return out


def _render_first_party(
    rng: np.random.Generator,
    w: World,
    nets: Networks | None,
    writer: _RecordWriter,
    first_party: list[str],
    report: Progress,
) -> None:
    """Render and write the first-party sources one at a time (one in memory at once)."""
    for i, s in enumerate(first_party):
        (block,) = sources.render_first_party(rng, w, nets, [s])
        writer.emit(block)
        del block
        report(f"rendered {s}", 0.15 + 0.2 * (i + 1) / max(len(first_party), 1))


def _render_anonymous(
    rng: np.random.Generator, w: World, writer: _RecordWriter, anonymous_sources: list[str]
) -> _AnonymousRows:
    """Render and write the cookie and mobile-ad-id records the recipe asks for."""
    rows = _AnonymousRows()
    if "cookie" in anonymous_sources:
        block, rows.cookie_rows = anonymous.render_cookies(rng, w)
        rows.cookie_rid0 = writer.next_id
        writer.emit(block)
        del block
    if "maid" in anonymous_sources:
        block, rows.maid_rows = anonymous.render_maids(rng, w)
        rows.maid_rid0 = writer.next_id
        writer.emit(block)
        del block
    return rows


def _write_evidence(
    rng: np.random.Generator,
    w: World,
    nets: Networks,
    root: Path,
    hazards: HazardTags,
    rows: _AnonymousRows,
    report: Progress,
) -> None:
    """Evidence tables of the anonymous identifiers, ``ip_stats`` and ``truth/ips``."""
    ids = anonymous.identifiers(
        w, rows.cookie_rows, rows.cookie_rid0, rows.maid_rows, rows.maid_rid0
    )
    tables = root / "tables"
    sinks = {
        "identifier_ip": ParquetSink(
            tables / "identifier_ip.parquet", anonymous.IDENTIFIER_IP_SCHEMA
        ),
        "identifier_domain": ParquetSink(
            tables / "identifier_domain.parquet", anonymous.IDENTIFIER_DOMAIN_SCHEMA
        ),
        "identifier_hour": ParquetSink(
            tables / "identifier_hour.parquet", anonymous.IDENTIFIER_HOUR_SCHEMA
        ),
    }
    masks, ip_stats = anonymous.write_evidence(
        rng, w, nets, ids, sinks, lambda f: report("anonymous evidence", 0.4 + 0.4 * f)
    )
    for s in sinks.values():
        s.close()
    hazards.add(ids.record_id, masks)
    write_frame(tables / "ip_stats.parquet", ip_stats.drop("kind"))
    write_frame(root / "truth" / "ips.parquet", ip_stats.select("ip", "kind"))


def _write_manifest(out: Path, recipe: Recipe, seed: int, w: World, counts: dict[str, int]) -> None:
    """The manifest of a generated dataset: recipe, seed, generator version and counts."""
    write_manifest(
        out,
        name=recipe.dataset_name,
        kind="generated",
        recipe=recipe.to_dict(),
        seed=seed,
        generator={"name": "idbench.datagen", "version": GENERATOR_VERSION},
        extra={
            "size": recipe.size,
            "counts": {
                "persons": w.n_persons,
                "households": w.n_households,
                "records_by_source": counts,
            },
        },
    )


def _manifest_matches(root: Path, recipe: Recipe, seed: int, version: str) -> bool:
    mpath = root / "manifest.json"
    if not mpath.is_file():
        return False
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return (
        m.get("seed") == seed
        and (m.get("generator") or {}).get("version") == version
        and (m.get("recipe") or {}).get("params") == json.loads(json.dumps(recipe.params))
    )


def ensure_generated(
    name: str | Path,
    size: str,
    seed: int,
    root: Path = Path("datasets/generated"),
    *,
    overrides: Iterable[str] | Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return ``root/<folder>-s<seed>``, generating it only if it is not there yet.

    ``<folder>`` is :attr:`Recipe.folder_name`: ``<name>-<size>`` for a bundled preset,
    with a hash of the resolved parameters for overrides or a recipe file of your own.
    An existing directory is reused when its manifest records the same seed, generator
    version and resolved parameters; otherwise it is regenerated in place.
    """
    recipe = load_recipe(name, size=size, overrides=overrides)
    out = Path(root) / f"{recipe.folder_name}-s{seed}"
    if _manifest_matches(out, recipe, seed, GENERATOR_VERSION):
        log.info("dataset %s is up to date", out)
        return out
    return generate(recipe, seed=seed, out=out, progress=progress)
