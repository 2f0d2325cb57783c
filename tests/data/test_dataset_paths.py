"""Run records name datasets without a path of the machine that made them."""

from __future__ import annotations

from pathlib import Path

from bench.data.dataset import CHECKOUT, open_stored_path, stored_path


def test_a_dataset_in_the_checkout_is_stored_relative_to_it() -> None:
    folder = CHECKOUT / "datasets" / "generated" / "cdp-realistic-small-s1"
    assert stored_path(folder) == "datasets/generated/cdp-realistic-small-s1"
    assert open_stored_path("datasets/generated/cdp-realistic-small-s1") == folder


def test_a_dataset_elsewhere_keeps_its_absolute_path(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    assert stored_path(folder) == str(folder.resolve())
    assert open_stored_path(str(folder.resolve())) == folder.resolve()
