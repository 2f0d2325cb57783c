"""The synthetic identity world: one latent population, rendered as CDP and DMP sources.

Public functions: :func:`generate` (recipe + seed -> dataset directory in the layout of
``docs/dataset-layout.md``) and :func:`describe` (counts and distributions of a
generated dataset, JSON-able). Design and sources of every default: ``datasets/README.md``.

Everything is drawn from one ``numpy.random.default_rng(seed)`` handed down to each
function in a fixed order, with vectorised numpy/polars code (no per-record Python), and
written with a single-threaded Parquet writer: same recipe + seed -> same bytes.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from bench.data.dataset import write_manifest
from bench.data.recipes import Recipe, load_recipe

__all__ = ["GENERATOR_VERSION", "HAZARDS", "describe", "ensure_generated", "generate"]

log = logging.getLogger(__name__)

#: Bump when the same recipe + seed would produce different bytes.
GENERATOR_VERSION = "1"

#: Hazard tags written to truth/hazards.parquet (see datasets/README.md).
HAZARDS = (
    "cgnat_ip",
    "date_error",
    "duplicate",
    "email_churn",
    "fake_name",
    "itp_cookie_reset",
    "junk_identifier",
    "moved",
    "name_change",
    "nickname",
    "office_ip",
    "public_wifi_ip",
    "recycled_phone",
    "shared_device",
    "shared_family_email",
    "swapped_name",
    "typo",
)

TRUTH_RECORDS_SCHEMA = pa.schema(
    [("record_id", pa.int64()), ("person_id", pa.int64()), ("household_id", pa.int64())]
)
HAZARDS_SCHEMA = pa.schema([("record_id", pa.int64()), ("hazard", pa.string())])
IDENTIFIERS_SCHEMA = pa.schema(
    [
        ("id_type", pa.string()),
        ("id_value", pa.string()),
        ("person_id", pa.int64()),
        ("valid_from", pa.timestamp("us")),
        ("valid_to", pa.timestamp("us")),
    ]
)

Progress = Callable[[str, float], None]


def _noop(_phase: str, _frac: float) -> None:
    pass


class _Hazards:
    """Hazard tags collected as (record_id, tag code) integer arrays, written sorted."""

    def __init__(self) -> None:
        self.rids: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []

    def add(self, rid: np.ndarray, masks: dict[str, np.ndarray]) -> None:
        for name, mask in masks.items():
            if name not in HAZARDS:
                msg = f"internal: hazard tag {name!r} is not declared in HAZARDS"
                raise KeyError(msg)
            sel = rid[np.asarray(mask, bool)]
            self.rids.append(sel)
            self.codes.append(np.full(len(sel), HAZARDS.index(name), np.int8))

    def frame(self) -> pl.DataFrame:
        rid = np.concatenate(self.rids) if self.rids else np.empty(0, np.int64)
        code = np.concatenate(self.codes) if self.codes else np.empty(0, np.int8)
        order = np.lexsort((code, rid))
        return pl.DataFrame(
            {
                "record_id": rid[order].astype(np.int64),
                "hazard": pl.Series(list(HAZARDS), dtype=pl.String).gather(
                    code[order].astype(np.int64)
                ),
            }
        )


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
    from bench.data.datagen import anonymous, sources, world
    from bench.data.datagen._util import ParquetSink, write_frame
    from bench.data.datagen.network import Networks

    report = progress or _noop
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t_start = time.perf_counter()
    params = recipe.params
    src = params["sources"]
    rng = np.random.default_rng(seed)

    report("simulating the world", 0.0)
    w = world.build_world(rng, params)
    nets = Networks(w)
    report("rendering first-party sources", 0.15)

    rec_sink = ParquetSink(tmp / "records.parquet", sources.RECORD_SCHEMA)
    truth_sink = ParquetSink(tmp / "truth" / "records.parquet", TRUTH_RECORDS_SCHEMA)
    hazards = _Hazards()
    counts: dict[str, int] = {}
    next_id = 1

    def emit(block: sources.Rendered) -> np.ndarray:
        nonlocal next_id
        n = len(block.person)
        rid = np.arange(next_id, next_id + n, dtype=np.int64)
        next_id += n
        frame = block.frame.with_columns(
            pl.Series("record_id", rid), pl.lit(block.source).alias("source")
        )
        rec_sink.write(frame)
        truth_sink.write(
            pl.DataFrame(
                {
                    "record_id": rid,
                    "person_id": block.person.astype(np.int64) + 1,
                    "household_id": w.p_hh[block.person].astype(np.int64) + 1,
                }
            )
        )
        hazards.add(rid, block.hazards)
        counts[block.source] = n
        return rid

    fp = src["first_party"]
    for i, s in enumerate(fp):
        (block,) = sources.render_first_party(rng, w, nets, [s])
        emit(block)
        del block
        report(f"rendered {s}", 0.15 + 0.2 * (i + 1) / max(len(fp), 1))

    cookie_rows = maid_rows = None
    cookie_rid0 = maid_rid0 = 0
    if "cookie" in src["anonymous"]:
        block, cookie_rows = anonymous.render_cookies(rng, w)
        cookie_rid0 = next_id
        emit(block)
        del block
    if "maid" in src["anonymous"]:
        block, maid_rows = anonymous.render_maids(rng, w)
        maid_rid0 = next_id
        emit(block)
        del block
    rec_sink.close()
    truth_sink.close()
    report("rendered anonymous identifiers", 0.4)

    ip_stats = None
    if src["evidence"] and src["anonymous"]:
        ids = anonymous.identifiers(w, cookie_rows, cookie_rid0, maid_rows, maid_rid0)
        sinks = {
            "identifier_ip": ParquetSink(
                tmp / "tables" / "identifier_ip.parquet", anonymous.IDENTIFIER_IP_SCHEMA
            ),
            "identifier_domain": ParquetSink(
                tmp / "tables" / "identifier_domain.parquet", anonymous.IDENTIFIER_DOMAIN_SCHEMA
            ),
            "identifier_hour": ParquetSink(
                tmp / "tables" / "identifier_hour.parquet", anonymous.IDENTIFIER_HOUR_SCHEMA
            ),
        }
        masks, ip_stats = anonymous.write_evidence(
            rng, w, nets, ids, sinks, lambda f: report("anonymous evidence", 0.4 + 0.4 * f)
        )
        for s in sinks.values():
            s.close()
        hazards.add(ids.record_id, masks)
        write_frame(tmp / "tables" / "ip_stats.parquet", ip_stats.drop("kind"))
        write_frame(tmp / "truth" / "ips.parquet", ip_stats.select("ip", "kind"))
        del ids, masks, ip_stats

    report("writing truth", 0.85)
    write_frame(tmp / "truth" / "hazards.parquet", hazards.frame(), HAZARDS_SCHEMA)
    _write_identifiers(w, tmp / "truth" / "identifiers.parquet", cookie_rows, maid_rows)
    write_frame(tmp / "truth" / "persons.parquet", _persons_frame(w))

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    elapsed = time.perf_counter() - t_start
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
    report("done", 1.0)
    log.info("generated %s in %.1f s (%d records)", out, elapsed, next_id - 1)
    return out


def _write_identifiers(
    w: Any, path: Path, cookie_rows: np.ndarray | None, maid_rows: np.ndarray | None
) -> None:
    """Ownership intervals of every identifier: emails, phones, cookies, mobile ad ids."""
    from bench.data.datagen import anonymous, sources, vocab
    from bench.data.datagen._util import ParquetSink, day_to_ts

    sink = ParquetSink(path, IDENTIFIERS_SCHEMA)
    H = w.horizon

    def put(
        id_type: str, value: pl.Series, person: np.ndarray, t0: np.ndarray, t1: np.ndarray
    ) -> None:
        df = pl.DataFrame(
            {
                "id_type": pl.repeat(id_type, len(person), eager=True),
                "id_value": value,
                "person_id": person.astype(np.int64) + 1,
                "valid_from": day_to_ts(w.start, t0),
                "valid_to": day_to_ts(w.start, t1),
            }
        )
        sink.write(df)

    # Emails: personal rows (old value until the switch, new one after).
    personal = w.e_person >= 0
    pr = np.flatnonzero(personal)
    sw = w.e_switch[pr]
    put("email", w.e_old.gather(pr), w.e_person[pr], np.zeros(len(pr)), np.minimum(sw, H))
    ch = pr[np.isfinite(sw)]
    put("email", w.e_new.gather(ch), w.e_person[ch], w.e_switch[ch], np.full(len(ch), H))
    # Shared family addresses: one interval per adult of the household.
    sh = np.flatnonzero(~personal)
    if len(sh):
        adults = np.flatnonzero(w.p_adult)
        hh_of = w.p_hh[adults]
        rows = np.flatnonzero(np.isin(hh_of, w.e_hh[sh]))
        members = adults[rows]
        erow = w.hh_shared_email[w.p_hh[members]]
        put(
            "email", w.e_old.gather(erow), members, np.zeros(len(members)), np.full(len(members), H)
        )
    # Phones: old owner until the switch; the new number (maybe recycled) after it.
    ph = sources._phone_format(w.ph_old, "raw")
    put("phone", ph, w.ph_person, np.zeros(len(ph)), np.minimum(w.ph_switch, H))
    c = np.flatnonzero(w.ph_new >= 0)
    put(
        "phone",
        sources._phone_format(w.ph_new[c], "raw"),
        w.ph_person[c],
        w.ph_switch[c],
        np.full(len(c), H),
    )
    if cookie_rows is not None:
        rows = np.sort(cookie_rows)
        owner = w.d_person[w.b_device[w.c_browser[rows]]]
        put(
            "cookie",
            pl.Series(anonymous.hex_ids(sources.cookie_key_rows(w, rows))),
            owner,
            w.c_start[rows],
            w.c_end[rows],
        )
    if maid_rows is not None:
        rows = np.sort(maid_rows)
        d = w.m_device[rows]
        apple = np.isin(w.d_os[d], [vocab.OSES.index("iOS"), vocab.OSES.index("iPadOS")])
        put(
            "maid",
            anonymous._maid_strings(w, rows, apple),
            w.d_person[d],
            w.m_start[rows],
            w.m_end[rows],
        )
    sink.close()


def _persons_frame(w: Any) -> pl.DataFrame:
    """Per-person truth: household, demographics, reach flags (business metrics, slicing)."""
    return pl.DataFrame(
        {
            "person_id": np.arange(w.n_persons, dtype=np.int64) + 1,
            "household_id": w.p_hh.astype(np.int64) + 1,
            "age": w.p_age.astype(np.int32),
            "sex": pl.Series(["F", "M"], dtype=pl.String).gather(w.p_sex.astype(np.int64)),
            "given_name": w.p_given,
            "family_name": w.p_family,
            "is_customer": w.p_customer,
            "has_crm": w.p_crm,
            "has_loyalty": w.p_loyalty,
            "has_web_account": w.p_account,
            "office_id": w.p_office.astype(np.int64),
            "cookie_deletion_class": pl.Series(
                ["never", "regular", "serial"], dtype=pl.String
            ).gather(w.p_cookie_class.astype(np.int64)),
        }
    )


def describe(path: str | Path) -> dict[str, Any]:
    """Summarise a generated dataset: counts per source and hazard, per-person spreads.

    Returns a JSON-able dict with ``records_by_source``, ``hazards`` (records per tag),
    ``records_per_person`` (overall and per source group: mean and quantiles),
    ``identifiers_per_person`` (per identifier type), ``tables`` (row counts) and
    ``persons`` / ``households``.
    """
    from bench.data.dataset import Dataset
    from bench.sql import engine

    ds = Dataset.open(path)
    con = engine.connect(threads=2)
    try:
        engine.register_parquet(con, "r", ds.records_path)
        engine.register_parquet(con, "t", ds.truth_path)
        by_source = engine.query(
            con, "SELECT source, count(*) AS n FROM r GROUP BY source ORDER BY source"
        ).to_pylist()
        truth = ds.truth_tables
        hz: list[dict[str, Any]] = []
        if "hazards" in truth:
            engine.register_parquet(con, "h", truth["hazards"])
            hz = engine.query(
                con, "SELECT hazard, count(*) AS n FROM h GROUP BY hazard ORDER BY hazard"
            ).to_pylist()

        def spread(where: str) -> dict[str, Any]:
            return engine.query_one(
                con,
                f"""
                WITH c AS (SELECT t.person_id, count(*) AS n FROM t JOIN r USING (record_id)
                           WHERE {where} GROUP BY t.person_id)
                SELECT count(*) AS persons, avg(n) AS mean, min(n) AS min,
                       quantile_disc(n, 0.5) AS p50, quantile_disc(n, 0.9) AS p90,
                       quantile_disc(n, 0.99) AS p99, max(n) AS max FROM c
                """,
                step="describe spread",
            )

        per_person = {
            "all": spread("TRUE"),
            "first_party": spread("r.source NOT IN ('cookie', 'maid')"),
            "anonymous": spread("r.source IN ('cookie', 'maid')"),
        }
        ids: list[dict[str, Any]] = []
        if "identifiers" in truth:
            engine.register_parquet(con, "i", truth["identifiers"])
            ids = engine.query(
                con,
                """
                WITH c AS (SELECT id_type, person_id, count(DISTINCT id_value) AS n
                           FROM i GROUP BY id_type, person_id)
                SELECT id_type, count(*) AS persons, avg(n) AS mean,
                       quantile_disc(n, 0.5) AS p50, max(n) AS max
                FROM c GROUP BY id_type ORDER BY id_type
                """,
            ).to_pylist()
        sizes = engine.query_one(
            con,
            """SELECT count(DISTINCT person_id) AS persons_with_records,
                      count(DISTINCT household_id) AS households_with_records FROM t""",
        )
    finally:
        con.close()
    counts = ds.manifest.get("counts", {})
    return {
        "name": ds.name,
        "fingerprint": ds.fingerprint,
        "seed": ds.manifest.get("seed"),
        "persons": counts.get("persons"),
        "households": counts.get("households"),
        **sizes,
        "records": sum(r["n"] for r in by_source),
        "records_by_source": {r["source"]: r["n"] for r in by_source},
        "hazards": {r["hazard"]: r["n"] for r in hz},
        "records_per_person": {
            k: {kk: (float(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
            for k, v in per_person.items()
        },
        "identifiers_per_person": {
            r["id_type"]: {k: v for k, v in r.items() if k != "id_type"} for r in ids
        },
        "tables": {k: v for k, v in (ds.manifest.get("rows") or {}).items()},
    }


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
    progress: Callable[[str, float], None] | None = None,
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
