"""Suite specs: grids expand, bad files get messages naming file, key and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.run.suite import SuiteError, load_suite, parse_bytes


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


OK = '[[datasets]]\npath = "d"\n[[matchers]]\nname = "exact"\n'


def test_grid_expands_to_every_combination(tmp_path: Path) -> None:
    suite = load_suite(
        _write(
            tmp_path,
            '[[datasets]]\npath = "d"\n[[matchers]]\nname = "m"\nparams = {a = 1}\n'
            "grid = {b = [1, 2], c = ['x', 'y', 'z']}\n",
        )
    )
    combos = suite.matchers[0].expand()
    assert len(combos) == 6
    assert {"a": 1, "b": 2, "c": "z"} in combos
    assert suite.datasets[0].path == (tmp_path / "d").resolve()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("repeat = 2\n" + OK, "unknown key 'repeat' (did you mean 'repeats'?)"),
        ("threads = 'two'\n" + OK, "key 'threads' must be int"),
        (OK + "colour = 1\n", "matchers[0]: unknown key 'colour'"),
        ("[[datasets]]\npath = 'd'\nrecipe = 'x'\n[[matchers]]\nname='e'\n", "exactly one of"),
        ("[[datasets]]\npath = 'd'\n", "no [[matchers]]"),
        ("name = \n", "not valid TOML"),
        ("memory_limit = 'lots'\n" + OK, "cannot read 'lots' as a size"),
        ("repeats = 0\n" + OK, "repeats must be >= 1"),
        (OK + "grid = {keys = []}\n", "grid.keys must be a non-empty list"),
    ],
)
def test_bad_suites_name_file_key_and_reason(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_parse_bytes() -> None:
    assert parse_bytes("6GB") == 6 * 1024**3
    assert parse_bytes("512MiB") == 512 * 1024**2
    assert parse_bytes(1000) == 1000


def test_bundled_suites_load_and_name_known_recipes() -> None:
    from bench.data.recipes import available_recipes, load_recipe
    from bench.run.suite import SUITES_DIR

    suites = sorted(SUITES_DIR.glob("*.toml"))
    assert {p.stem for p in suites} >= {"default", "noise-sweep"}
    for path in suites:
        suite = load_suite(path)
        for ds in suite.datasets:
            assert ds.recipe in available_recipes(), (path, ds.recipe)
            load_recipe(ds.recipe, size=ds.size or "tiny", overrides=ds.overrides)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "../escape"\n' + OK, "must be letters, digits"),
        ('memory_limit = "0GB"\n' + OK, "must be positive"),
        ("memory_limit = -5\n" + OK, "must be positive"),
        ("timeout_s = nan\n" + OK, "timeout_s must be a finite number > 0, got nan"),
        ("timeout_s = inf\n" + OK, "timeout_s must be a finite number > 0, got inf"),
        ("timeout_s = -inf\n" + OK, "timeout_s must be a finite number > 0"),
        ("timeout_s = -3\n" + OK, "timeout_s must be a finite number > 0, got -3"),
        ("timeout_s = 0.0\n" + OK, "timeout_s must be a finite number > 0"),
    ],
)
def test_suite_names_and_limits_are_checked(tmp_path: Path, text: str, needle: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError, match=re.escape(needle)) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_run_keys_depend_on_the_seed() -> None:
    from bench.run.results import run_key

    args = {"dataset_fingerprint": "sha256:x", "matcher": "splink", "params": {}, "repeat": 0}
    assert run_key(**args, seed=1) != run_key(**args, seed=2)


def test_run_keys_of_duckdb_runs_are_unchanged_and_other_engines_differ() -> None:
    from bench.run.results import run_key

    args = {"dataset_fingerprint": "sha256:x", "matcher": "cascade", "params": {}, "repeat": 0}
    # the key every stored DuckDB run already has (computed before engines existed)
    assert run_key(**args, seed=1) == run_key(**args, seed=1, engine="duckdb") == "f04f512b18d22d05"
    assert run_key(**args, seed=1, engine="spark") != run_key(**args, seed=1)


def test_engine_table_is_read_and_checked(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, OK))
    assert suite.engine.kind == "duckdb" and suite.engine.to_dict() == {"kind": "duckdb"}
    text = (
        OK
        + '[engine]\nkind = "spark"\nmaster = "local[2]"\nconf = {"spark.driver.memory" = "2g"}\n'
    )
    spark = load_suite(_write(tmp_path, text)).engine
    assert spark.to_dict() == {
        "kind": "spark",
        "master": "local[2]",
        "conf": {"spark.driver.memory": "2g"},
    }
    for bad, needle in (
        ('[engine]\nkind = "flink"\n', "kind must be one of duckdb, spark, got 'flink'"),
        (
            '[engine]\nkind = "spark"\nmaster = "locl[2]"\n',
            "master 'locl[2]' is not a Spark master",
        ),
        (
            '[engine]\nkind = "spark"\nmastr = "local"\n',
            "unknown key 'mastr' (did you mean 'master'?)",
        ),
        ('[engine]\nmaster = "local[2]"\n', "master and conf apply to kind = 'spark' only"),
    ):
        with pytest.raises(SuiteError, match=re.escape(needle)) as info:
            load_suite(_write(tmp_path, OK + bad))
        assert "s.toml: engine" in str(info.value)


def test_labels_name_the_engine_of_runs_off_duckdb() -> None:
    from bench.run.labels import record_key, short_labels

    recs = [
        {"matcher": {"name": "cascade", "params": {}}},
        {"matcher": {"name": "cascade", "params": {}}, "engine": {"kind": "duckdb"}},
        {"matcher": {"name": "cascade", "params": {}}, "engine": {"kind": "spark"}},
    ]
    labels = short_labels(recs)
    assert [labels[record_key(r)] for r in recs] == ["cascade", "cascade", "cascade [spark]"]


# --- checking the matchers a suite names, before anything runs -------------------------

BAD_SUITE = """name = "bad"

[[datasets]]
recipe = "cdp-realistic"
size = "tiny"

[[matchers]]
name = "exact"
params = {keyz = ["email"]}

[[matchers]]
name = "exactt"

[[matchers]]
name = "exact"
params = {keys = ["phone_number"]}

[[matchers]]
name = "splink"
# a threshold is a number
params = {threshold = "high"}

[[matchers]]
name = "cascade"
grid = {rules = [[["email"]], [["emial"]]]}

[[matchers]]
name = "singletons"
"""


def test_check_suite_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    from bench.run.suite_check import check_suite

    path = _write(tmp_path, BAD_SUITE)
    with pytest.raises(SuiteError) as info:
        check_suite(load_suite(path))
    lines = str(info.value).splitlines()
    assert lines[0] == f"suite {path}: 5 problem(s), nothing was run:"
    problems = [line.strip() for line in lines[1:]]
    assert problems[0] == (
        f"{path}:9: matchers[0] (exact): unknown parameter 'keyz' (did you mean 'keys'?); "
        "it takes: keys"
    )
    assert problems[1].startswith(f"{path}:12: matchers[1] (exactt): no matcher named 'exactt'")
    assert problems[1].endswith("did you mean exact?")
    assert problems[2].startswith(
        f"{path}:16: matchers[2] (exact): keys names column(s) 'phone_number' that no "
        "generated dataset has (did you mean 'phone'?)"
    )
    assert problems[3] == (
        f"{path}:21: matchers[3] (splink): parameter 'threshold' must be float, got 'high'"
    )
    assert problems[4].startswith(
        f"{path}:25: matchers[4] (cascade): rules names column(s) 'emial'"
    )


def test_check_suite_accepts_the_bundled_suites_and_good_values(tmp_path: Path) -> None:
    from bench.run.suite import SUITES_DIR
    from bench.run.suite_check import check_suite

    for path in sorted(SUITES_DIR.glob("*.toml")):
        check_suite(load_suite(path))
    good = (
        '[[datasets]]\nrecipe = "cdp-realistic"\n'
        '[[matchers]]\nname = "splink"\nparams = {threshold = 1}\n'
        '[[matchers]]\nname = "cascade"\nparams = {max_group_size = 20, rules = [["email"]]}\n'
        '[[matchers]]\nname = "recordlinkage"\ngrid = {threshold = [0.5, 0.9]}\n'
    )
    check_suite(load_suite(_write(tmp_path, good)))


def test_columns_are_not_checked_where_they_cannot_be_known(tmp_path: Path) -> None:
    from bench.run.suite_check import check_suite

    # a dataset directory may have any column
    text = '[[datasets]]\npath = "d"\n[[matchers]]\nname = "exact"\nparams = {keys = ["x"]}\n'
    check_suite(load_suite(_write(tmp_path, text)))
    bad_type = text.replace('keys = ["x"]', "keys = 3")
    with pytest.raises(SuiteError, match=r"s.toml:5: .*parameter 'keys' must be"):
        check_suite(load_suite(_write(tmp_path, bad_type)))


def test_idbench_run_stops_before_generating_anything(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = _write(tmp_path, BAD_SUITE)
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "run", str(path), "--results", str(results)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "300", "PATH": ""},
    )
    assert done.returncode == 2, done.stderr
    assert "5 problem(s), nothing was run" in done.stderr
    assert "did you mean 'keys'?" in done.stderr
    assert not results.exists()
    assert not (tmp_path / "datasets").exists()
