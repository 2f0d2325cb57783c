"""Matcher discovery: broken plugins are a status, duplicate names an error naming both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bench.cli import main
from bench.run import registry
from matchers.baseline import Exact


@dataclass
class FakeDist:
    name: str
    version: str = "1.0"

    @property
    def metadata(self) -> dict[str, str]:
        return {"Name": self.name}


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    dist: FakeDist
    target: Any = None

    def load(self) -> Any:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def _install(monkeypatch: pytest.MonkeyPatch, eps: list[FakeEntryPoint]) -> None:
    monkeypatch.setattr(registry.md, "entry_points", lambda group: eps)


def test_a_broken_plugin_is_a_status_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(
        monkeypatch,
        [
            FakeEntryPoint("exact", "matchers.baseline:Exact", FakeDist("idbench"), Exact),
            FakeEntryPoint(
                "shiny", "shiny_plugin:Matcher", FakeDist("shiny-plugin"), ImportError("no numpy 1")
            ),
        ],
    )
    entries = registry.discover()
    assert entries["exact"].status == "ok"
    assert entries["shiny"].status == "broken"
    assert "no numpy 1" in entries["shiny"].error
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "broken" in out and "shiny" in out
    with pytest.raises(registry.RegistryError, match=r"shiny.*broken.*no numpy 1"):
        registry.load_matcher_class("shiny")


def test_duplicate_names_are_an_error_naming_both_distributions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _install(
        monkeypatch,
        [
            FakeEntryPoint("exact", "matchers.baseline:Exact", FakeDist("idbench"), Exact),
            FakeEntryPoint("exact", "other:Exact", FakeDist("other-dist"), Exact),
        ],
    )
    with pytest.raises(registry.RegistryError, match=r"idbench.*other-dist"):
        registry.discover()
    with pytest.raises(registry.RegistryError, match="registered twice"):
        registry.load_matcher_class("exact")


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(registry.RegistryError, match="did you mean exact"):
        registry.load_matcher_class("exakt")


def test_idbench_check_passes_for_exact(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.testing import CHECKS

    assert main(["check", "exact"]) == 0
    out = capsys.readouterr().out
    assert f"{len(CHECKS)} passed, 0 failed" in out
    assert "check_lens" in out
