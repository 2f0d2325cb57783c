"""``idbench scale``: size parsing and one tiny end-to-end sweep (the fit: test_aggregate)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.run.scale import (
    format_count,
    nearest_size,
    parse_count,
    parse_sizes,
    persons_for,
    scale,
)


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("10k", 10_000),
        ("10K", 10_000),
        ("1M", 1_000_000),
        ("2.5m", 2_500_000),
        ("10_000", 10_000),
        ("50000", 50_000),
        ("1e6", 1_000_000),
        (" 100k ", 100_000),
        (7, 7),
    ],
)
def test_parse_count(text: str | int, n: int) -> None:
    assert parse_count(text) == n


@pytest.mark.parametrize("text", ["", "k", "ten", "1.5", "0", "-5k", "10x", "1M5"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="record count"):
        parse_count(text)


def test_parse_sizes_sorts_and_dedupes() -> None:
    assert parse_sizes("1M,10k, 100k,10000") == (10_000, 100_000, 1_000_000)
    assert parse_sizes(["10k", 5]) == (5, 10_000)
    with pytest.raises(ValueError, match="no record counts"):
        parse_sizes(" , ")


def test_format_and_nearest_size() -> None:
    assert [format_count(n) for n in (950, 10_000, 1_500_000, 10**7)] == [
        "950",
        "10k",
        "1.5M",
        "10M",
    ]
    assert [nearest_size(n) for n in (2_000, 10_000, 100_000, 1_000_000, 10**7)] == [
        "tiny",
        "tiny",
        "small",
        "large",
        "xl",
    ]
    assert persons_for(10_000, 2.5) == 4_000
    assert persons_for(1, 2.5) == 1


@pytest.mark.slow  # generates two sizes and runs a suite in worker processes
def test_scale_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # datasets/generated/ lands in the temporary directory
    results = tmp_path / "results"
    out = scale(
        ["singletons", "exact"],
        sizes=("2k", "5k"),
        results_root=results,
        suite_name="scaling-test",
        timeout_s=120,
        memory_limit="4GB",
    )
    assert out["records_per_person"] > 1
    assert [d["requested"] for d in out["datasets"]] == [2_000, 5_000]
    for d in out["datasets"]:  # calibrated on tiny: within 15% of the request
        assert abs(d["n_records"] / d["requested"] - 1) < 0.15
    assert set(out["fits"]) == {"singletons", "exact"}
    for name, pts in out["points"].items():
        assert [p["status"] for p in pts] == ["ok", "ok"], name
        assert all(p["seconds"] > 0 for p in pts)
        assert math.isfinite(out["fits"][name]["b"])
    # stored like any run: one record per (size, matcher) under results/<suite>/runs
    stored = [json.loads(p.read_text()) for p in (results / "scaling-test" / "runs").glob("*.json")]
    assert len(stored) == 4
    assert {r["suite"] for r in stored} == {"scaling-test"}
    assert {r["dataset"]["n_records"] for r in stored} == {d["n_records"] for d in out["datasets"]}
    # a second call reuses the stored runs (same keys, nothing re-run)
    again = scale(
        ["singletons", "exact"], sizes=("2k", "5k"), results_root=results, suite_name="scaling-test"
    )
    assert again["fits"]["exact"]["b"] == out["fits"]["exact"]["b"]


def test_scale_rejects_an_unknown_matcher_before_generating(tmp_path) -> None:
    import pytest

    from bench.run.registry import RegistryError
    from bench.run.scale import scale

    with pytest.raises(RegistryError, match="no matcher named"):
        scale(["exakt"], sizes="1k", results_root=tmp_path / "r")
    assert not (tmp_path / "r").exists()
