"""The synthetic identity world: determinism, layout, rates, planted hazards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from bench.data.datagen import GENERATOR_VERSION, HAZARDS, describe, ensure_generated, generate
from bench.data.dataset import Dataset, fingerprint
from bench.data.recipes import load_recipe

#: generates whole datasets (and once in a second process).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _gen(tmp: Path, name: str, seed: int, **over: object) -> Path:
    recipe = load_recipe(name, size="tiny", overrides={k: v for k, v in over.items()})
    return generate(recipe, seed=seed, out=tmp / f"{name}-{seed}")


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """identity-graph with enough persons for hazards to occur (~25k records)."""
    return _gen(tmp_path_factory.mktemp("g"), "identity-graph", 3, **{"world.persons": 300})


@pytest.fixture(scope="module")
def cdp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdp-realistic large enough for rate checks (~55k records)."""
    return _gen(tmp_path_factory.mktemp("c"), "cdp-realistic", 5, **{"world.persons": 20_000})


def _con(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for rel in ("records", "truth/records", "truth/hazards", "truth/identifiers", "truth/persons"):
        con.sql(f"CREATE VIEW \"{rel.replace('/', '_')}\" AS SELECT * FROM '{path / rel}.parquet'")
    for t in ("identifier_ip", "ip_stats", "identifier_domain", "identifier_hour"):
        p = path / "tables" / f"{t}.parquet"
        if p.exists():
            con.sql(f"CREATE VIEW {t} AS SELECT * FROM '{p}'")
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.sql(sql).fetchall()[0]


# ---------------------------------------------------------------- determinism, layout

_SCRIPT = """
import sys
from pathlib import Path
from bench.data.recipes import load_recipe
from bench.data.datagen import generate
r = load_recipe("identity-graph", size="tiny", overrides=["world.persons=60"])
generate(r, seed=int(sys.argv[1]), out=Path(sys.argv[2]))
"""


def _run(seed: int, out: Path) -> None:
    subprocess.run([sys.executable, "-c", _SCRIPT, str(seed), str(out)], check=True, cwd=ROOT)


def test_same_seed_same_bytes_across_processes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _run(11, a)
    _run(11, b)
    _run(12, c)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.parquet"))
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)
    ma = json.loads((a / "manifest.json").read_text())
    assert ma["fingerprint"] == fingerprint(a)
    assert ma["generator"] == {"name": "idbench.datagen", "version": GENERATOR_VERSION}


def test_layout_and_truth_complete(graph: Path) -> None:
    ds = Dataset.open(graph)
    assert set(ds.tables) == {"identifier_ip", "identifier_domain", "identifier_hour", "ip_stats"}
    assert {"records", "hazards", "identifiers", "persons"} <= set(ds.truth_tables)
    con = _con(graph)
    n, n_ids, n_truth, n_join = _one(
        con,
        """SELECT (SELECT count(*) FROM records), (SELECT count(DISTINCT record_id) FROM records),
                  (SELECT count(*) FROM truth_records),
                  (SELECT count(*) FROM records JOIN truth_records USING (record_id))""",
    )
    assert n == n_ids == n_truth == n_join
    sources = {r[0] for r in con.sql("SELECT DISTINCT source FROM records").fetchall()}
    assert sources == {"crm", "order", "loyalty", "pos", "login", "cookie", "maid"}
    # Evidence and hazards refer to existing records; hazard tags are the declared ones.
    orphans = _one(
        con,
        """SELECT (SELECT count(*) FROM identifier_ip WHERE record_id NOT IN (SELECT record_id FROM records))
                + (SELECT count(*) FROM truth_hazards WHERE record_id NOT IN (SELECT record_id FROM records))""",
    )[0]
    assert orphans == 0
    tags = {r[0] for r in con.sql("SELECT DISTINCT hazard FROM truth_hazards").fetchall()}
    assert tags <= set(HAZARDS)
    # Truth is never in the inputs.
    cols = {r[0] for r in con.sql("DESCRIBE records").fetchall()}
    assert not {"person_id", "household_id"} & cols


def test_bridges_join_the_two_worlds(graph: Path) -> None:
    con = _con(graph)
    # Every login's cookie_id is a cookie record, and they belong to one household.
    bad, total = _one(
        con,
        """SELECT count(*) FILTER (WHERE c.record_id IS NULL OR tl.household_id <> tc.household_id),
                  count(*)
           FROM records l JOIN truth_records tl USING (record_id)
           LEFT JOIN records c ON c.source = 'cookie' AND c.cookie_id = l.cookie_id
           LEFT JOIN truth_records tc ON tc.record_id = c.record_id
           WHERE l.source = 'login'""",
    )
    assert total > 0 and bad == 0
    share = _one(
        con,
        """SELECT avg((cookie_id IN (SELECT cookie_id FROM records WHERE source = 'login'))::INT)
           FROM records WHERE source = 'cookie'""",
    )[0]
    assert 0.15 < share < 0.35  # login_cookie_share = 0.25


def test_describe_is_jsonable(graph: Path) -> None:
    d = describe(graph)
    json.dumps(d)
    assert d["records"] == sum(d["records_by_source"].values())
    assert d["hazards"]["typo"] > 0
    assert d["records_per_person"]["all"]["max"] >= d["records_per_person"]["all"]["p50"]
    assert set(d["identifiers_per_person"]) == {"cookie", "email", "maid", "phone"}


def test_ensure_generated_reuses(tmp_path: Path) -> None:
    a = ensure_generated("cdp-clean", "tiny", 1, tmp_path)
    stamp = (a / "manifest.json").stat().st_mtime_ns
    b = ensure_generated("cdp-clean", "tiny", 1, tmp_path)
    assert a == b == tmp_path / "cdp-clean-tiny-s1"
    assert (b / "manifest.json").stat().st_mtime_ns == stamp


# ---------------------------------------------------------------- rates


def test_household_size_mean(cdp: Path) -> None:
    con = _con(cdp)
    mean, single = _one(
        con,
        """SELECT avg(n), avg((n = 1)::INT) FROM
           (SELECT household_id, count(*) AS n FROM truth_persons GROUP BY household_id)""",
    )
    assert abs(mean - 2.49) < 0.08  # US Census 2.51
    assert abs(single - 0.28) < 0.03


def test_share_with_one_email(cdp: Path) -> None:
    con = _con(cdp)
    # Addresses held from the start by exactly one person (no churn, no shared ones).
    one = _one(
        con,
        """WITH e AS (SELECT id_value FROM truth_identifiers WHERE id_type = 'email'
                      GROUP BY id_value HAVING count(DISTINCT person_id) = 1),
                p AS (SELECT person_id, count(DISTINCT id_value) AS n
                      FROM truth_identifiers JOIN e USING (id_value)
                      WHERE id_type = 'email' AND valid_from = (SELECT min(valid_from) FROM truth_identifiers)
                      GROUP BY person_id)
           SELECT avg((n = 1)::INT) FROM p""",
    )[0]
    assert abs(one - 0.23) < 0.03  # DMA 2016


def test_crm_duplicate_rate(cdp: Path) -> None:
    con = _con(cdp)
    rate = _one(
        con,
        """SELECT 1 - count(DISTINCT person_id) / count(*) FROM records
           JOIN truth_records USING (record_id) WHERE source = 'crm'""",
    )[0]
    assert abs(rate - 0.09) < 0.025  # AHIMA 10% / ECRI 8%


def test_typo_rate_per_channel(cdp: Path) -> None:
    con = _con(cdp)
    # Given-name cells that differ from the true name, on records without the other
    # name hazards: the per-cell typo rate of the channel.
    rows = con.sql(
        """WITH h AS (SELECT record_id FROM truth_hazards
                      WHERE hazard IN ('nickname', 'swapped_name', 'fake_name'))
           SELECT r.source, avg((r.given_name <> p.given_name)::INT) AS rate
           FROM records r JOIN truth_records t USING (record_id)
           JOIN truth_persons p USING (person_id)
           WHERE r.given_name IS NOT NULL AND r.record_id NOT IN (SELECT record_id FROM h)
           GROUP BY r.source"""
    ).fetchall()
    rate = dict(rows)
    assert abs(rate["crm"] - 0.10) < 0.02
    assert abs(rate["order"] - 0.01) < 0.006
    assert abs(rate["loyalty"] - 0.05) < 0.02


def test_recycled_phones(cdp: Path) -> None:
    con = _con(cdp)
    shared, total, overlap = _one(
        con,
        """WITH p AS (SELECT id_value, count(DISTINCT person_id) AS n FROM truth_identifiers
                      WHERE id_type = 'phone' GROUP BY id_value)
           SELECT count(*) FILTER (WHERE n = 2), count(*),
                  (SELECT count(*) FROM truth_identifiers a JOIN truth_identifiers b
                     ON a.id_type = 'phone' AND b.id_type = 'phone' AND a.id_value = b.id_value
                    AND a.person_id < b.person_id
                    AND a.valid_from < b.valid_to AND b.valid_from < a.valid_to)
           FROM p""",
    )
    # ~10%/yr churn, half of the dropped numbers reassigned when the 45-90 day gap ends
    # within the horizon: about 3% of all numbers have two owners.
    assert 0.015 < shared / total < 0.05
    assert overlap == 0


def test_cookie_deletion_classes(graph: Path) -> None:
    con = _con(graph)
    rows = dict(
        con.sql(
            """SELECT p.cookie_deletion_class, count(*) / count(DISTINCT p.person_id)
               FROM records r JOIN truth_records t USING (record_id)
               JOIN truth_persons p USING (person_id)
               WHERE r.source = 'cookie' GROUP BY 1"""
        ).fetchall()
    )
    assert rows["serial"] > 5 * rows["never"]
    assert rows["regular"] > 2 * rows["never"]


# ---------------------------------------------------------------- planted hazards


def test_shared_family_email_joins_one_household(cdp: Path) -> None:
    con = _con(cdp)
    rows = con.sql(
        """SELECT lower(r.email), count(DISTINCT t.person_id), count(DISTINCT t.household_id)
           FROM records r JOIN truth_records t USING (record_id)
           JOIN truth_hazards h USING (record_id)
           WHERE h.hazard = 'shared_family_email' AND r.email LIKE '%@%'
           GROUP BY 1"""
    ).fetchall()
    assert rows, "no shared family email planted"
    assert any(n_p >= 2 for _, n_p, _ in rows)
    assert all(n_h == 1 for _, _, n_h in rows)


def test_recycled_phone_two_owners_disjoint(cdp: Path) -> None:
    con = _con(cdp)
    rows = con.sql(
        """SELECT id_value, list(person_id ORDER BY valid_from), list(valid_from ORDER BY valid_from),
                  list(valid_to ORDER BY valid_from)
           FROM truth_identifiers WHERE id_type = 'phone'
           GROUP BY id_value HAVING count(DISTINCT person_id) > 1"""
    ).fetchall()
    assert rows
    for _, persons, starts, ends in rows:
        assert persons[0] != persons[1]
        assert ends[0] <= starts[1]
    n = _one(con, "SELECT count(*) FROM truth_hazards WHERE hazard = 'recycled_phone'")[0]
    assert n > 0


def test_cgnat_ip_seen_with_many_persons(graph: Path) -> None:
    con = _con(graph)
    con.sql(f"CREATE VIEW truth_ips AS SELECT * FROM '{graph / 'truth' / 'ips.parquet'}'")
    top_cell, avg_cell, avg_home = _one(
        con,
        """WITH x AS (SELECT k.kind, s.is_cellular, i.ip, count(DISTINCT t.person_id) AS persons
                      FROM identifier_ip i JOIN ip_stats s USING (ip) JOIN truth_ips k USING (ip)
                      JOIN truth_records t USING (record_id) GROUP BY 1, 2, 3)
           SELECT max(persons) FILTER (WHERE is_cellular),
                  avg(persons) FILTER (WHERE is_cellular),
                  avg(persons) FILTER (WHERE kind = 'home')
           FROM x""",
    )
    assert top_cell >= 20
    assert avg_cell > 3 * avg_home
    tagged = _one(con, "SELECT count(*) FROM truth_hazards WHERE hazard = 'cgnat_ip'")[0]
    assert tagged > 0


def test_clean_recipe_has_no_noise(tmp_path: Path) -> None:
    path = _gen(tmp_path, "cdp-clean", 2)
    con = _con(path)
    tags = {r[0] for r in con.sql("SELECT DISTINCT hazard FROM truth_hazards").fetchall()}
    # Only structural facts remain: duplicates and orders from shared household devices.
    assert tags <= {"duplicate", "shared_device"}
    # Each non-null email belongs to exactly one person.
    assert (
        _one(
            con,
            """SELECT count(*) FROM (SELECT email FROM records JOIN truth_records USING (record_id)
           WHERE email IS NOT NULL GROUP BY email HAVING count(DISTINCT person_id) > 1)""",
        )[0]
        == 0
    )
