"""Bad input files and recipes: every refusal says which file, where in it, and what to do.

Positions follow the file format: a CSV file is quoted by line (the header is line 1), a
Parquet file by data row (the first record is row 1).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data.dataset import DatasetError
from bench.data.sources import FileDataError, default_out, load_recipe, prepare

COLUMNS = ("id", "name", "dob", "person")
ROWS = [
    ("A1", "Anna", "1984-03-07", "p1"),
    ("A2", "Ben", "1990-11-21", "p2"),
    ("A3", "Clara", "1988-02-29", "p3"),
    ("A4", "Dora", "1970-01-01", "p4"),
]
RECIPE = """\
kind = "file"
truth_column = "person"

[[files]]
path = "{file}"
source = "s"
id_column = "id"

[columns]
name = "given_name"
dob = "dob"
"""
PATTERN_RECIPE = RECIPE.replace('truth_column = "person"', r'truth_pattern = "^A(\\d+)$"')


def write_table(path: Path, rows: list[tuple], columns: tuple[str, ...] = COLUMNS) -> None:
    """A CSV (``None`` as an empty field) or a Parquet file, by the suffix of ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        body = [",".join("" if v is None else str(v) for v in r) for r in rows]
        path.write_text("\n".join([",".join(columns), *body]) + "\n", encoding="utf-8")
    else:
        pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)}), path)


def with_recipe(folder: Path, fmt: str, rows: list[tuple], recipe: str = RECIPE) -> Path:
    """``data.<fmt>`` holding ``rows`` and ``recipe.toml`` reading it; returns the recipe."""
    write_table(folder / f"data.{fmt}", rows)
    path = folder / "recipe.toml"
    path.write_text(recipe.format(file=f"data.{fmt}"), encoding="utf-8")
    return path


def refusal(recipe: Path) -> str:
    """The message :func:`prepare` refuses ``recipe`` with."""
    with pytest.raises(FileDataError) as info:
        prepare(recipe, out=recipe.parent / "out")
    return str(info.value)


def at(fmt: str, row: int) -> str:
    """Where data row ``row`` (1-based) of a ``fmt`` file is said to be."""
    return f"line {row + 1}" if fmt == "csv" else f"row {row}"


def changed(row: int, **values: object) -> list[tuple]:
    """:data:`ROWS` with some columns of data row ``row`` (1-based) replaced."""
    out = [list(r) for r in ROWS]
    for col, value in values.items():
        out[row - 1][COLUMNS.index(col)] = value
    return [tuple(r) for r in out]


# -- 1. ragged CSV rows --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "found"), [(",surplus", 5), (None, 3)], ids=["one too many", "one too few"]
)
@pytest.mark.parametrize("before", [1, 30_000], ids=["early", "after the sniffed sample"])
def test_ragged_csv_row_names_its_line(
    tmp_path: Path, extra: str | None, found: int, before: int
) -> None:
    good = [f"A{i},n{i},1984-03-07,p{i}" for i in range(1, before + 1)]
    bad = f"B1,x,1984-03-07,p0{extra}" if extra else "B1,x,1984-03-07"
    recipe = with_recipe(tmp_path, "csv", ROWS)
    lines = [",".join(COLUMNS), *good, bad, "C1,y,1984-03-07,p9"]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    msg = refusal(recipe)
    for needle in ("file data.csv", f"(line {before + 2})", "expected 4 fields", f"found {found}"):
        assert needle in msg, f"{needle!r} not in: {msg}"


# -- 2. positions: CSV lines, Parquet rows -------------------------------------------------

#: (rows, recipe, needles): {p1} and {p3} stand for the position of data rows 1 and 3.
POSITIONED: dict[str, tuple[list[tuple], str, tuple[str, ...]]] = {
    "empty id": (changed(3, id=None), RECIPE, ("empty id in column 'id'", "(first at {p3})")),
    "duplicate id": (changed(3, id="A1"), RECIPE, ("'A1' (2 times: {p1}, {p3})",)),
    "empty truth": (changed(3, person=None), RECIPE, ("truth_column", "'A3' ({p3})")),
    "truth pattern": (changed(3, id="B3"), PATTERN_RECIPE, ("truth_pattern", "'B3' ({p3})")),
    "no date parses": (
        [(*r[:2], None if i < 2 else "7 May", r[3]) for i, r in enumerate(ROWS)],
        RECIPE,
        ("mapped to 'dob'", "'7 May' (data.{fmt} {p3})", "date_format"),
    ),
}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("case", sorted(POSITIONED))
def test_positions_are_lines_in_csv_and_rows_in_parquet(
    tmp_path: Path, case: str, fmt: str
) -> None:
    rows, recipe, needles = POSITIONED[case]
    msg = refusal(with_recipe(tmp_path, fmt, rows, recipe))
    for needle in needles:
        needle = needle.format(p1=at(fmt, 1), p3=at(fmt, 3), fmt=fmt)
        assert needle in msg, f"{needle!r} not in: {msg}"
    if fmt == "parquet":
        assert not re.search(r"\bline \d", msg), msg


TWO_FILES = """\
kind = "file"
truth_column = "person"
id_column = "id"

[[files]]
path = "a.csv"
source = "s"

[[files]]
path = "b.parquet"
source = "s"
"""


def test_duplicates_across_files_name_each_place(tmp_path: Path) -> None:
    write_table(tmp_path / "a.csv", ROWS)
    write_table(tmp_path / "b.parquet", changed(2, id="A3"))  # A1, A3, A3, A4
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(TWO_FILES, encoding="utf-8")
    msg = refusal(recipe)
    assert "file a.csv, b.parquet: 3 id(s) occur more than once in source 's'" in msg, msg
    assert "'A3' (3 times: a.csv line 4, b.parquet row 2, b.parquet row 3)" in msg, msg


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_invalid_dates_warn_with_their_position(
    tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    recipe = with_recipe(tmp_path, fmt, changed(3, dob="not a date"))
    with caplog.at_level(logging.WARNING, logger="bench.data.sources"):
        prepare(recipe, out=tmp_path / "out")
    assert f"'not a date' (data.{fmt} {at(fmt, 3)})" in caplog.text, caplog.text


LINKS_RECIPE = """\
kind = "file"
id_column = "id"

[[files]]
path = "data.csv"
source = "s"

[links]
path = "links.{fmt}"
left = "l"
right = "r"
"""


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(
    ("left", "needle"),
    [("A9", "'A9' ({p2})"), (None, "links file links.{fmt} ({p2}): column 'l' is empty")],
    ids=["unknown id", "empty id"],
)
def test_links_positions_follow_the_links_file_format(
    tmp_path: Path, fmt: str, left: str | None, needle: str
) -> None:
    write_table(tmp_path / "data.csv", ROWS)
    write_table(tmp_path / f"links.{fmt}", [("A1", "A2"), (left, "A3")], ("l", "r"))
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(LINKS_RECIPE.format(fmt=fmt), encoding="utf-8")
    msg = refusal(recipe)
    assert needle.format(p2=at(fmt, 2), fmt=fmt) in msg, msg


# -- 3. NaN truth values -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_truth_values_are_refused(tmp_path: Path, bad: float) -> None:
    # Two strangers (A3, A4) must not become one person through a shared NaN.
    rows = [(*r[:3], float(i) if i < 3 else bad) for i, r in enumerate(ROWS, start=1)]
    msg = refusal(with_recipe(tmp_path, "parquet", rows))
    for needle in ("file data.parquet", "column 'person'", "'A3' (row 3)", "NaN or infinite"):
        assert needle in msg, f"{needle!r} not in: {msg}"


def test_finite_float_truth_values_are_kept(tmp_path: Path) -> None:
    rows = [(*r[:3], float(i % 2)) for i, r in enumerate(ROWS)]
    out = prepare(with_recipe(tmp_path, "parquet", rows), out=tmp_path / "out")
    truth = pq.read_table(out / "truth" / "records.parquet")
    assert len(set(truth.column("person_id").to_pylist())) == 2


# -- 4. recipe names stay inside datasets/generated ----------------------------------------

BAD_NAMES = ["../../../escaped", "{tmp}/escaped", "sub/dir", "..", "a..b", "back\\slash", ".x"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "make",
    [
        lambda name: f"name = {name!r}\n" + RECIPE.format(file="data.csv"),
        lambda name: f'kind = "febrl"\nset = 1\nname = {name!r}\n',
    ],
    ids=["file", "febrl"],
)
def test_recipe_name_that_is_a_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, make: Callable[[str], str]
) -> None:
    work = tmp_path / "work"
    write_table(work / "data.csv", ROWS)
    recipe = work / "recipe.toml"
    recipe.write_text(make(name.format(tmp=tmp_path)), encoding="utf-8")
    monkeypatch.chdir(work)  # the default output is datasets/generated/ under the cwd
    for attempt in (load_recipe, prepare):
        with pytest.raises(FileDataError) as info:
            attempt(recipe)
        msg = str(info.value)
        assert f"recipe {recipe}, key 'name'" in msg and "letters, digits" in msg, msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert not (work / "datasets").exists()


def test_default_out_stays_inside_datasets_generated() -> None:
    assert default_out("mine-r1234abcd") == Path("datasets/generated/mine-r1234abcd")
    for folder in ("../x", "/abs/x", "a/b", "..", "."):
        with pytest.raises(DatasetError, match="not a plain folder name"):
            default_out(folder)
