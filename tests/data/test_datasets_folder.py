"""The data folder must never become an import package (it would shadow `datasets`)."""

from __future__ import annotations

from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def test_datasets_folder_holds_no_python() -> None:
    offenders = [
        p.relative_to(DATASETS).as_posix()
        for p in DATASETS.rglob("*")
        if p.is_file()
        and (p.suffix in {".py", ".pyc"} or p.name == "__init__.py")
        and "generated" not in p.relative_to(DATASETS).parts
    ]
    assert offenders == [], f"datasets/ must hold data only, found: {offenders}"


def test_datasets_folder_has_recipes_and_readme() -> None:
    assert (DATASETS / "README.md").is_file()
    names = {p.stem for p in DATASETS.glob("*.toml")}
    assert {
        "cdp-clean",
        "cdp-realistic",
        "dmp-crossdevice",
        "identity-graph",
        "adversarial",
    } <= names
