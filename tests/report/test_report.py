"""The report and figures, built from a stored fixture of run records.

``tests/fixtures/results/demo/runs/*.json`` holds hand-specified records (written by
``tests/fixtures/results/make_fixture.py``): five datasets of one recipe (three sizes,
three typo rates at the tiny size), two deterministic configurations and one
probabilistic matcher, a failed and a skipped run, and ``curves``/``hazards``/``monthly``
series on the small dataset.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.api import LENSES
from bench.report.build import build_report
from bench.report.figures import FIGURES, PER_DATASET, FigureUnavailable, PlotError, plot_one
from bench.report.format import format_number
from bench.report.records import matcher_lens, series
from bench.report.style import LENS_ORDER, LENS_STYLES
from bench.report.sweep import find_sweep
from bench.run.labels import config_label, matcher_label, short_labels

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "demo"
SMALL = "cdp-realistic-small-s42"
#: The label of the fixture's one splink configuration (no parameter varies: its name).
SPLINK = "splink"


def _fig(name: str, dataset: str = SMALL) -> str:
    """File stem of a figure: per-dataset figures carry their dataset's name."""
    return f"{name}-{dataset}" if name in PER_DATASET else name


def _records() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIXTURE.glob("runs/*.json"))]


def _ids(records: list[dict[str, Any]], pred) -> list[str]:
    return sorted(r["run_id"] for r in records if r["status"] == "ok" and pred(r))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    suite = tmp_path_factory.mktemp("results") / "demo"
    shutil.copytree(FIXTURE, suite)
    build_report(suite)
    return suite


def _sidecar(suite: Path, name: str) -> dict[str, Any]:
    return json.loads((suite / "figures" / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_report_files_exist(built: Path) -> None:
    assert (built / "report.md").is_file()
    assert (built / "report.html").is_file()
    md = (built / "report.md").read_text(encoding="utf-8")
    assert f"![Quality vs throughput: {SMALL}](figures/pareto-{SMALL}.png)" in md
    # no figure file silently stands for one of several datasets
    assert not (built / "figures" / "pareto.png").exists()


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_html_is_self_contained(built: Path) -> None:
    text = (built / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", text)
    assert "<link" not in text and "<script" not in text
    assert text.count('src="data:image/png;base64,') == len(list((built / "figures").glob("*.png")))


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_single_dataset_figures_are_drawn_for_every_dataset(built: Path) -> None:
    names = {r["dataset"]["name"] for r in _records() if r["status"] == "ok"}
    figures = built / "figures"
    for figure in ("pareto", "precision_recall"):
        drawn = {p.stem for p in figures.glob(f"{figure}*.png")}
        # every dataset's figure is named after it, and its heading names it too
        assert drawn == {f"{figure}-{n}" for n in names}, drawn
        sidecars = [
            json.loads(p.with_suffix(".json").read_text()) for p in figures.glob(f"{figure}*.png")
        ]
        assert all(s["figure"] == figure and s["run_ids"] for s in sidecars)
        assert {s["title"].split(": ", 1)[1] for s in sidecars} == names


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_every_figure_drawn_with_png_svg_sidecar(built: Path) -> None:
    figures = built / "figures"
    assert len(FIGURES) >= 6
    for name in map(_fig, FIGURES):
        for ext in ("png", "svg", "json"):
            path = figures / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
        assert (figures / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_sidecars_name_the_runs_behind_each_figure(built: Path) -> None:
    recs = _records()
    small = lambda r: r["dataset"]["name"] == SMALL  # noqa: E731
    expected = {
        # the primary dataset: most successful runs, ties broken by size
        "pareto": _ids(recs, small),
        "precision_recall": _ids(recs, small),
        "hazards": _ids(recs, small),
        "monthly": _ids(recs, small),
        # the three typo rates at the tiny size
        "degradation": _ids(recs, lambda r: r["dataset"]["recipe"]["size"] == "tiny"),
        # the three sizes at the default typo rate
        "scaling": _ids(recs, lambda r: not r["dataset"]["recipe"]["overrides"]),
    }
    for name, ids in expected.items():
        side = _sidecar(built, _fig(name))
        assert sorted(side["run_ids"]) == ids, name
        assert side["figure"] == name and side["suite"] == "demo"
    failed = {r["run_id"] for r in recs if r["status"] != "ok"}
    for name in FIGURES:
        assert not failed & set(_sidecar(built, _fig(name))["run_ids"])


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_captions_name_the_winners(built: Path) -> None:
    pareto = _sidecar(built, _fig("pareto"))["caption"]
    assert f"highest B-cubed F1 is 0.910 ({SPLINK}" in pareto
    assert "fastest is exact keys=phone" in pareto
    assert "noise.typo.crm_family" in _sidecar(built, "degradation")["caption"]
    assert f"Steepest: {SPLINK}" in _sidecar(built, "scaling")["caption"]
    assert "shared_family_email" in _sidecar(built, _fig("hazards"))["caption"]
    md = (built / "report.md").read_text(encoding="utf-8")
    assert f"**Probabilistic**: best is **{SPLINK}**" in md
    assert _sidecar(built, "degradation")["data"]["knob"] == "noise.typo.crm_family"
    assert _sidecar(built, "scaling")["data"]["exponents"][SPLINK] == pytest.approx(1.35, abs=0.01)


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_failed_and_skipped_runs_are_reported(built: Path) -> None:
    reason = "memory limit exceeded: resident memory reached 6231 MiB > limit 6144 MiB; killed"
    for doc, escape in (("report.md", str), ("report.html", html.escape)):
        text = (built / doc).read_text(encoding="utf-8")
        assert escape(reason) in text, doc
        assert "the dataset has no tables/identifier_hour table" in text, doc


@pytest.mark.slow  # draws every figure of the fixture suite (shared, ~10 s)
def test_same_matcher_same_colour_everywhere(built: Path) -> None:
    colours = [_sidecar(built, _fig(name))["colours"] for name in FIGURES]
    for lab in (SPLINK, "exact keys=email", "exact keys=phone"):
        seen = {c[lab] for c in colours if lab in c}
        assert len(seen) == 1, (lab, seen)
    splink = _sidecar(built, _fig("pareto"))["colours"][SPLINK]
    assert splink != _sidecar(built, _fig("pareto"))["colours"]["exact keys=email"]
    # the colour is really used for the drawing, not only written in the sidecar
    for name in ("pareto", "scaling"):
        assert splink in (built / "figures" / f"{_fig(name)}.svg").read_text(encoding="utf-8")


def test_missing_data_skips_figures_with_a_hint(tmp_path: Path) -> None:
    suite = tmp_path / "demo"
    (suite / "runs").mkdir(parents=True)
    for path in FIXTURE.glob("runs/*.json"):
        rec = json.loads(path.read_text(encoding="utf-8"))
        if rec["dataset"]["name"] == "cdp-realistic-tiny-s42":
            shutil.copy(path, suite / "runs" / path.name)
    # a stale figure from an earlier build must not survive
    (suite / "figures").mkdir()
    (suite / "figures" / "hazards.png").write_bytes(b"stale")
    build_report(suite)
    drawn = {p.stem for p in (suite / "figures").glob("*.png")}
    assert drawn == {"pareto-cdp-realistic-tiny-s42", "precision_recall-cdp-realistic-tiny-s42"}
    md = (suite / "report.md").read_text(encoding="utf-8")
    assert "Figures not drawn" in md
    assert "a scaling suite" in md and "a sweep suite" in md
    assert "`idbench run --recompute`" in md


def test_empty_suite_still_writes_a_report(tmp_path: Path) -> None:
    out = build_report(tmp_path / "nothing")
    assert out.is_file() and "No run records" in out.read_text(encoding="utf-8")


@pytest.mark.slow  # draws a figure end to end
def test_plot_one(tmp_path: Path) -> None:
    suite = tmp_path / "demo"
    shutil.copytree(FIXTURE, suite)
    files = plot_one(suite, "scaling", tmp_path / "out")
    assert [p.name for p in files] == ["scaling.png", "scaling.svg", "scaling.json"]
    assert all(p.is_file() for p in files)
    files = plot_one(suite, "pareto", tmp_path / "x" / "front.svg")
    assert files[0] == tmp_path / "x" / "front.png"
    with pytest.raises(PlotError, match="unknown figure 'nope'"):
        plot_one(suite, "nope")
    lone = tmp_path / "lone"
    (lone / "runs").mkdir(parents=True)
    shutil.copy(next(FIXTURE.glob("runs/*.json")), lone / "runs")
    with pytest.raises(FigureUnavailable, match="scaling suite"):
        plot_one(lone, "scaling")


def test_short_labels_show_only_varying_params() -> None:
    recs = [
        {"matcher": {"name": "exact", "params": {"keys": ["email"], "norm": True}}},
        {"matcher": {"name": "exact", "params": {"keys": ["email", "phone"], "norm": True}}},
        {"matcher": {"name": "splink", "params": {"threshold": 0.9}}},
        {"matcher": {"name": "anonymous-supervised", "params": {}, "tags": ["needs_labels"]}},
    ]
    assert sorted(short_labels(recs).values()) == [
        "anonymous-supervised (held-out)",
        "exact keys=email",
        "exact keys=email+phone",
        "splink",
    ]
    # one function writes every label: lists joined by +, never a Python repr
    assert matcher_label("exact", {"keys": ["email"]}) == "exact keys=email"
    assert matcher_label("x", {"b": 1, "a": [["p", "q"], "r"]}) == "x a=p|q+r, b=1"
    assert matcher_label("x", {"a": "v" * 60}).endswith("\u2026")


def test_matcher_lens_is_read_from_the_record() -> None:
    for lens in LENSES:
        assert matcher_lens({"name": "exact", "lens": lens, "tags": ["emits_pairs"]}) == lens
    # declared none (or one the harness does not know)
    assert matcher_lens({"name": "x", "lens": None}) == "unspecified"
    assert matcher_lens({"name": "x", "lens": "quantum"}) == "unspecified"
    # stored before matchers declared a lens: the tags decide, never the name
    assert matcher_lens({"name": "hybrid", "tags": ["emits_pairs"]}) == "probabilistic"
    assert matcher_lens({"name": "splink"}) == "deterministic"
    assert matcher_lens({"name": "pkg.mod:Thing", "tags": ["emits_pairs"]}) == "probabilistic"


def test_every_lens_has_a_style() -> None:
    assert set(LENS_STYLES) == set(LENS_ORDER)
    assert LENS_ORDER[: len(LENSES)] == LENSES
    assert LENS_STYLES["baseline"].short == "baseline"
    assert len({s.marker for s in LENS_STYLES.values()}) == len(LENS_STYLES)


def test_stored_lens_reaches_the_results_table(tmp_path: Path) -> None:
    suite = tmp_path / "demo"
    (suite / "runs").mkdir(parents=True)
    for path in FIXTURE.glob("runs/*.json"):
        rec = json.loads(path.read_text(encoding="utf-8"))
        if rec["dataset"]["name"] != "cdp-realistic-tiny-s42":
            continue
        lens = "hybrid" if rec["matcher"]["name"] == "splink" else "baseline"
        rec["matcher"]["lens"] = lens
        (suite / "runs" / path.name).write_text(json.dumps(rec), encoding="utf-8")
    build_report(suite)
    md = (suite / "report.md").read_text(encoding="utf-8")
    assert f"| {SPLINK} | hybrid | ok |  |" in md
    assert "| exact keys=email | baseline | ok | baseline |" in md
    assert "placed by their tags" not in md  # every record declares its lens


def test_one_number_format_and_one_label_maker() -> None:
    assert [format_number(v) for v in (None, 24000, 0.91, 6773.4, 0.0001234, "x")] == [
        "-",
        "24,000",
        "0.910",
        "6,773",
        "0.000",
        "x",
    ]
    assert format_number(1.23456, 2) == "1.23"
    params = {"keys": ["email", "phone"], "threshold": 0.9}
    assert config_label("exact", params, params) == "exact keys=email+phone, threshold=0.9"
    assert config_label("exact", params, ["threshold"]) == "exact threshold=0.9"
    assert config_label("singletons", {}, {}) == "singletons"


def test_find_sweep_merges_covarying_knobs_and_ignores_size() -> None:
    def rec(fp: str, size: str, a: float, b: float) -> dict[str, Any]:
        recipe = {"name": "r", "size": size, "params": {"noise": {"a": a, "b": b}}}
        return {"dataset": {"fingerprint": fp, "recipe": recipe}}

    recs = [rec("1", "tiny", 0.1, 1.0), rec("2", "tiny", 0.2, 2.0), rec("3", "small", 0.1, 1.0)]
    sweep = find_sweep(recs)
    assert sweep is not None
    assert (sweep.knob, sweep.covaried) == ("noise.a", ("noise.b",))
    assert sweep.values == {"1": 0.1, "2": 0.2}
    assert find_sweep([rec("1", "tiny", 0.1, 1.0), rec("3", "small", 0.1, 1.0)]) is None


def test_figures_draw_the_person_level_of_stored_series() -> None:
    rec = {
        "curves": [
            {"level": "household", "threshold": 0.5, "precision": 0.1, "recall": 0.9},
            {"level": "person", "threshold": 0.5, "precision": 0.8, "recall": 0.4},
        ]
    }
    assert series(rec, "curves") == [rec["curves"][1]]
    assert series({"monthly": [{"month": "2024-01"}]}, "monthly") == [{"month": "2024-01"}]


def test_scaling_quality_panel_circles_a_collapse(tmp_path: Path) -> None:
    suite = tmp_path / "demo"
    shutil.copytree(FIXTURE, suite)
    plot_one(suite, "scaling", tmp_path / "before")
    before = json.loads((tmp_path / "before" / "scaling.json").read_text(encoding="utf-8"))
    # the fixture's F1 is flat with size: nothing is flagged
    assert before["data"]["collapses"] == {}
    assert "No matcher's F1 falls more than 0.05" in before["caption"]
    # splink at the largest size loses 0.06 of F1 (0.8789 -> 0.8189): a collapse;
    # exact keys=email loses 0.04: not one
    for path in (suite / "runs").glob("*.json"):
        rec = json.loads(path.read_text(encoding="utf-8"))
        if rec["status"] != "ok" or rec["dataset"]["recipe"]["overrides"]:
            continue
        largest = rec["dataset"]["n_records"] == 240000
        if largest and rec["matcher"]["params"].get("keys") in (None, ["email"]):
            drop = 0.06 if rec["matcher"]["name"] == "splink" else 0.04
            rec["person"]["f1"] = round(rec["person"]["f1"] - drop, 4)
            path.write_text(json.dumps(rec), encoding="utf-8")
    plot_one(suite, "scaling", tmp_path / "after")
    after = json.loads((tmp_path / "after" / "scaling.json").read_text(encoding="utf-8"))
    assert after["data"]["collapses"] == {SPLINK: [240000]}
    assert f"(a collapse): {SPLINK} at 240,000 records." in after["caption"]
