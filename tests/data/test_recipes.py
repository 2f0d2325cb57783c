"""Recipe loading and validation: errors name the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data.recipes import KNOBS, SIZES, RecipeError, available_recipes, load_recipe

PRESETS = ["cdp-clean", "cdp-realistic", "dmp-crossdevice", "identity-graph", "adversarial"]


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("size", SIZES)
def test_presets_load_in_every_size(name: str, size: str) -> None:
    r = load_recipe(name, size=size)
    assert r.name == name and r.size == size
    assert set(r.params) == set(KNOBS)


def test_available_recipes_lists_presets() -> None:
    assert set(PRESETS) <= set(available_recipes())


def test_sizes_grow() -> None:
    persons = [load_recipe("identity-graph", size=s).get("world.persons") for s in SIZES]
    assert persons == sorted(persons) and len(set(persons)) == 4


def test_overrides_apply_and_parse() -> None:
    r = load_recipe(
        "cdp-realistic",
        size="tiny",
        overrides=["emails.churn_per_year=0.5", "world.persons=123", 'cookies.itp_mode="off"'],
    )
    assert r.get("emails.churn_per_year") == 0.5
    assert r.get("world.persons") == 123
    assert r.get("cookies.itp_mode") == "off"
    assert "world.persons=123" in r.overrides
    r2 = load_recipe("cdp-realistic", overrides={"noise.typo": {"web": 0.2}})
    assert r2.get("noise.typo")["web"] == 0.2
    assert r2.get("noise.typo")["crm_given"] == 0.10  # the rest of the table stays default


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mine.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[emails]\nchurn_per_yr = 0.3\n", "emails.churn_per_yr", "unknown knob"),
        ("[nosuch]\nx = 1\n", "nosuch", "unknown section"),
        ("[emails]\nchurn_per_year = -0.1\n", "emails.churn_per_year", "[0, 1]"),
        ("[emails]\nchurn_per_year = 1.5\n", "emails.churn_per_year", "[0, 1]"),
        ("[devices]\nextra_mean = -1\n", "devices.extra_mean", ">= 0"),
        ("[world]\npersons = 2.5\n", "world.persons", "integer"),
        ("[emails]\ncount_shares = [0.5, 0.5, 0.5, 0.5]\n", "emails.count_shares", "sum to 1"),
        ("[emails]\ncount_shares = [1.0]\n", "emails.count_shares", "list of 4"),
        ("[phones]\nrecycle_gap_days = [90, 45]\n", "phones.recycle_gap_days", "lo <= hi"),
        ('[cookies]\nitp_mode = "sometimes"\n', "cookies.itp_mode", "one of"),
        ('[world]\nstart_date = "2024-13-01"\n', "world.start_date", "ISO date"),
        ("[noise]\ntypo = { web = 2.0 }\n", "noise.typo.web", "<= 1"),
        ("[noise]\ntypo = { phone = 0.1 }\n", "noise.typo.phone", "unknown key"),
        ('[sources]\nfirst_party = ["fax"]\n', "sources.first_party", "drawn from"),
        ("[emails]\nuse_primary = 0.9\nuse_work = 0.2\n", "emails.use_work", "exceed 1"),
        ("[sizes.huge]\nworld.persons = 1\n", "sizes.huge", "unknown size"),
        ("[sizes.tiny]\nworld.persns = 1\n", "world.persns", "unknown knob"),
        ('[recipe]\nnme = "x"\n', "recipe.nme", "unknown key"),
    ],
)
def test_invalid_values_name_file_key_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    msg = str(info.value)
    assert str(path) in msg
    assert repr(key) in msg
    assert reason in msg


def test_malformed_toml_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[emails\nchurn = \n")
    with pytest.raises(RecipeError, match="malformed TOML") as info:
        load_recipe(path)
    assert str(path) in str(info.value)


def test_unknown_preset_and_size() -> None:
    with pytest.raises(RecipeError, match="no such file"):
        load_recipe("no-such-recipe")
    with pytest.raises(RecipeError, match="unknown size"):
        load_recipe("cdp-clean", size="medium")


def test_bad_override_syntax() -> None:
    with pytest.raises(RecipeError, match="key=value"):
        load_recipe("cdp-clean", overrides=["world.persons"])
    with pytest.raises(RecipeError, match="override"):
        load_recipe("cdp-clean", overrides=["world.persons=-3"])


def test_login_needs_cookies(tmp_path: Path) -> None:
    path = _write(tmp_path, '[sources]\nfirst_party = ["login"]\nanonymous = []\n')
    with pytest.raises(RecipeError, match="login needs the cookie source"):
        load_recipe(path)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_knob_values_are_rejected(value: str) -> None:
    from bench.data.recipes import RecipeError, load_recipe

    with pytest.raises(RecipeError, match="typo"):
        load_recipe("cdp-realistic", size="tiny", overrides=[f"noise.typo.web={value}"])


@pytest.mark.parametrize("persons", [0, 1])
def test_a_population_needs_two_persons(persons: int) -> None:
    from bench.data.recipes import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"world\.persons"):
        load_recipe("cdp-clean", size="tiny", overrides=[f"world.persons={persons}"])


# A population small enough to generate in well under a second (CRM records only).
SHOP = '[recipe]\nname = "shop"\n[world]\npersons = {persons}\n[sources]\nfirst_party = ["crm"]\nanonymous = []\n'


def test_recipe_files_sharing_a_name_get_their_own_folders(tmp_path: Path) -> None:
    from bench.data.datagen import ensure_generated
    from bench.data.dataset import Dataset

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tmp_path / "a" / "shop.toml"
    b = tmp_path / "b" / "shop.toml"
    a.write_text(SHOP.format(persons=40), encoding="utf-8")
    b.write_text(SHOP.format(persons=80), encoding="utf-8")
    root = tmp_path / "generated"
    out_a = ensure_generated(a, "tiny", 1, root)
    fp_a = Dataset.open(out_a).fingerprint
    out_b = ensure_generated(b, "tiny", 1, root)
    assert out_a != out_b
    assert out_a.name.startswith("shop-tiny-r") and out_b.name.startswith("shop-tiny-r")
    assert Dataset.open(out_b).fingerprint != fp_a
    assert Dataset.open(out_a).fingerprint == fp_a  # b did not overwrite a's data
    assert Dataset.open(out_a).manifest["recipe"]["params"]["world"]["persons"] == 40
    # the same file used again reuses its folder without regenerating it
    stamp = (out_a / "manifest.json").stat().st_mtime_ns
    assert ensure_generated(a, "tiny", 1, root) == out_a
    assert (out_a / "manifest.json").stat().st_mtime_ns == stamp


def test_one_suite_naming_both_files_runs_each_on_its_own_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.data.dataset import Dataset
    from bench.run.runner import plan_suite
    from bench.run.suite import load_suite

    for sub, persons in (("a", 40), ("b", 80)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "shop.toml").write_text(SHOP.format(persons=persons), encoding="utf-8")
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "t"\n[[datasets]]\nrecipe = "a/shop.toml"\n[[datasets]]\nrecipe = "b/shop.toml"\n'
        '[[matchers]]\nname = "singletons"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # datasets/generated/ lands in the temporary directory
    runs = plan_suite(load_suite(suite))
    assert len({r.dataset.root for r in runs}) == 2
    persons = []
    for r in runs:  # each run's folder still holds the data the run was planned against
        on_disk = Dataset.open(r.dataset.root)
        assert on_disk.fingerprint == r.dataset.fingerprint
        persons.append(on_disk.manifest["recipe"]["params"]["world"]["persons"])
    assert persons == [40, 80]


def test_bundled_presets_keep_their_folder_names(tmp_path: Path) -> None:
    from bench.data.recipes import recipes_dir

    assert load_recipe("cdp-clean", size="small").folder_name == "cdp-clean-small"
    path = recipes_dir() / "cdp-clean.toml"
    assert load_recipe(path, size="small").folder_name == "cdp-clean-small"
    # overrides keep their parameter hash, as before
    swept = load_recipe("cdp-clean", size="small", overrides=["world.persons=100"])
    assert swept.folder_name == swept.dataset_name
    assert swept.folder_name.startswith("cdp-clean-small-o")
    # an edited copy of a preset under the same name does not take the preset's folder
    copy = tmp_path / "cdp-clean.toml"
    text = path.read_text(encoding="utf-8").replace("junk_share = 0.0", "junk_share = 0.2", 1)
    copy.write_text(text, encoding="utf-8")
    assert load_recipe(copy, size="small").folder_name.startswith("cdp-clean-small-r")


@pytest.mark.parametrize(
    "name", ["../../escaped", "{tmp}/escaped", "sub/dir", "..", "a..b", "back\\slash", ".hidden"]
)
def test_recipe_name_that_is_a_path_is_refused(tmp_path: Path, name: str) -> None:
    from bench.data.datagen import ensure_generated

    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "mine.toml"
    name = name.format(tmp=tmp_path)  # an absolute path, inside the test's own folder
    path.write_text(SHOP.format(persons=40).replace('"shop"', repr(name)), encoding="utf-8")
    root = tmp_path / "in" / "generated"
    with pytest.raises(RecipeError) as info:
        ensure_generated(path, "tiny", 1, root)
    msg = str(info.value)
    assert str(path) in msg and "'recipe.name'" in msg and "letters, digits" in msg
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in", "mine.toml"]


def test_folder_names_stay_inside_their_root() -> None:
    from bench.data.dataset import DatasetError
    from bench.data.recipes import Recipe

    # belt and braces: a Recipe made without load_recipe cannot name a folder elsewhere
    with pytest.raises(DatasetError, match="not a plain folder name"):
        _ = Recipe(name="../../x", size="tiny", params={}).folder_name
