"""``idbench scale``: size parsing and one tiny end-to-end sweep (the fit: test_aggregate)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.run.scale import (
    COLLAPSE_F1_DROP,
    _Point,
    fit_table,
    flag_collapses,
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


def _point(requested: int, f1: float | None, largest: int, **kw: object) -> _Point:
    return _Point(
        requested=requested,
        persons=requested // 3,
        n_records=requested,
        seconds=30.0 * requested / 10**6 if f1 is not None else None,
        peak_rss_bytes=2 * 1024**3,
        status="ok" if f1 is not None else "timeout",
        error=None,
        bcubed_f1=f1,
        f1=f1,
        run_key=f"k{requested}",
        precision=None if f1 is None else min(1.0, 2 * f1),
        recall=0.53 if f1 is not None else None,
        largest_cluster=largest,
        largest_entity=44,
        **kw,  # type: ignore[arg-type]
    )


def test_flag_collapses_against_the_smallest_size() -> None:
    pts = [
        _point(1_000_000, 0.647, 115),
        _point(2_000_000, 0.600, 130),  # 0.047 below: within the tolerance
        _point(3_000_000, 0.101, 13_326),  # the old Splink 3M run
        _point(10_000_000, None, 0),  # failed: never flagged
    ]
    assert COLLAPSE_F1_DROP == 0.05
    assert flag_collapses(pts) == [3_000_000]
    assert [p.collapse for p in pts] == [False, False, True, False]
    # the reference is the smallest size that has an F1, not a failed one before it
    assert flag_collapses([_point(10, None, 0), _point(20, 0.5, 2), _point(30, 0.44, 2)]) == [30]
    assert flag_collapses([]) == []


def test_fit_table_shows_quality_and_the_collapse() -> None:
    from dataclasses import asdict

    from rich.console import Console

    pts = [_point(1_000_000, 0.647, 115), _point(3_000_000, 0.101, 13_326)]
    collapses = flag_collapses(pts)
    result = {
        "recipe": "cdp-realistic",
        "datasets": [{"requested": p.requested, "n_records": p.n_records} for p in pts],
        "points": {"splink": [asdict(p) for p in pts]},
        "collapses": {"splink": collapses},
        "fits": {"splink": {"a": 1e-5, "b": 0.94, "r2": None, "b_tail": 0.94}},
    }
    console = Console(record=True, width=200, color_system="truecolor")
    console.print(fit_table(result))
    text = console.export_text(clear=False)
    assert "F1 0.647" in text
    assert "F1 0.101 collapse" in text
    assert text.count("collapse") == 1
    assert "max 115 / 44" in text
    assert "max 13,326 / 44" in text
    assert "P 1.000 R 0.530" in text
    assert "0.94" in text
    # the collapse alone is red (ANSI 31)
    styled = console.export_text(styles=True)
    assert "\x1b[31mF1 0.101 collapse" in styled
    assert styled.count("\x1b[31m") == 1
    assert json.loads(json.dumps(result))["points"]["splink"][1]["collapse"] is True


def test_scale_cli_applies_set_at_every_size_and_refuses_world_persons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["scale", "--matchers", "exact", "--sizes", "1k", "--set", "world.persons=9"]) == 2
    assert not (tmp_path / "results").exists()
    args = [
        "scale",
        "--matchers",
        "exact",
        "--sizes",
        "2k,3k",
        "--results",
        "r",
        "--json",
        "s.json",
    ]
    assert main([*args, "--set", "emails.junk_share=0.05"]) == 0
    stored = [
        json.loads(p.read_text()) for p in (tmp_path / "r" / "scaling" / "runs").glob("*.json")
    ]
    assert len(stored) == 2
    for rec in stored:  # the override reached the recipe of both sizes, beside world.persons
        overrides = rec["dataset"]["recipe"]["overrides"]
        assert "emails.junk_share=0.05" in overrides
        assert any(o.startswith("world.persons=") for o in overrides)
