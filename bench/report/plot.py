"""Figures drawn from stored run records only (a pure function of ``results/<suite>/``).

Every figure is a function ``(Results) -> Drawing | Skip`` registered in :data:`FIGURES`.
A figure whose data is not in the records (no scaling runs, no ``hazards`` field, ...)
returns a :class:`Skip` saying what is missing and which kind of run produces it; nothing
is drawn and the report lists it under "not drawn".

Each drawn figure is saved as ``<name>.png`` (150 dpi), ``<name>.svg`` and a sidecar
``<name>.json`` naming the runs behind it (run ids and keys), the caption, and the colour
of every matcher in it. Colours are stable: the short labels of all matchers of the
suite are sorted and mapped to a fixed palette, so a matcher has the same colour in every
figure of a report. Markers and line styles show the lens: circles and solid lines for
deterministic matchers, triangles and dashed lines for probabilistic ones, diamonds and
dash-dot lines for hybrids.

Figures (see :data:`FIGURES`): ``pareto`` (B-cubed F1 vs records/s with the Pareto
frontier), ``precision_recall`` (one point per run, threshold curves where stored),
``degradation`` (F1 vs the one recipe knob a sweep suite varies), ``hazards`` (false and
missed merges by hazard tag), ``monthly`` (precision, recall and F1 per month),
``scaling`` (match time and records/s vs records, log-log, with fitted exponents).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never pick an interactive backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bench.run.results import load_records

__all__ = [
    "FIGURES",
    "KIND_SHORT",
    "PALETTE",
    "Drawing",
    "FigureUnavailable",
    "PlotError",
    "Rendered",
    "Results",
    "Skip",
    "dataset_key",
    "find_sweep",
    "fit_exponent",
    "match_seconds",
    "matcher_kind",
    "plot_one",
    "recipe_knobs",
    "records_per_s",
    "render_all",
    "save_drawing",
    "short_labels",
]

log = logging.getLogger(__name__)

DPI = 150

#: tab10 followed by ten further distinct colours; labels beyond 20 cycle.
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
    "#8ca252",
    "#e7ba52",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
)

KINDS = ("deterministic", "probabilistic", "hybrid")
_MARKER = {"deterministic": "o", "probabilistic": "^", "hybrid": "D"}
_LINESTYLE = {"deterministic": "-", "probabilistic": "--", "hybrid": "-."}
KIND_SHORT = {"deterministic": "det", "probabilistic": "prob", "hybrid": "hybrid"}

_DETERMINISTIC_PREFIXES = ("exact", "cascade", "login-bridge", "login_bridge", "singletons", "rule")
_PROBABILISTIC_PREFIXES = ("splink", "recordlinkage", "anonymous", "cookie", "device")
_HYBRID_PREFIXES = ("hybrid",)

#: Recipe keys that set the size of a dataset: a difference in them is scaling, not a sweep.
_SIZE_KEYS = frozenset({"size", "world.persons", "persons", "n_records"})
#: Recipe keys that describe rather than parametrise a dataset.
_RECIPE_META = frozenset({"name", "description", "source", "path", "overrides", "fixture"})

_LABEL_MAX = 34

_FALLBACK_METRIC_LABELS = {
    "precision": "pairwise precision",
    "recall": "pairwise recall",
    "f1": "pairwise F1",
    "bcubed_f1": "B-cubed F1",
}


class PlotError(ValueError):
    """A figure was asked for that does not exist, or there are no records to draw."""


class FigureUnavailable(PlotError):
    """The stored records lack the data a figure needs (the message says what runs add it)."""


def metric_label(key: str) -> str:
    """Human-readable name of a metric key (from :data:`bench.metrics.core.METRICS`)."""
    try:
        from bench.metrics.core import METRICS

        return METRICS[key].label
    except (ImportError, KeyError, AttributeError):
        return _FALLBACK_METRIC_LABELS.get(key, key)


def matcher_kind(matcher: dict[str, Any]) -> str:
    """``deterministic``, ``probabilistic`` or ``hybrid`` for a record's ``matcher`` entry.

    Classified by name (exact, cascade*, login-bridge, singletons are deterministic;
    splink, recordlinkage, anonymous/cookie/device matchers probabilistic; hybrid*
    hybrid). Unknown names fall back to tags: a matcher that emits scored pairs is
    probabilistic, any other deterministic.
    """
    name = str(matcher.get("name") or "").lower()
    # a "module:Class" plugin is classified by its class name
    name = name.rsplit(":", 1)[-1]
    if name.startswith(_HYBRID_PREFIXES):
        return "hybrid"
    if name.startswith(_DETERMINISTIC_PREFIXES):
        return "deterministic"
    if name.startswith(_PROBABILISTIC_PREFIXES):
        return "probabilistic"
    return "probabilistic" if "emits_pairs" in (matcher.get("tags") or []) else "deterministic"


# --- labels and colours -----------------------------------------------------------------


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "+".join(
            "|".join(map(_fmt_value, v)) if isinstance(v, list | tuple) else _fmt_value(v)
            for v in value
        )
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def short_labels(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Short label of every matcher configuration: name plus the params that vary.

    Returns a mapping ``canonical (name, params) -> label``. A matcher run with one
    parameter set is labelled by its name alone; otherwise only the parameters whose
    values differ between its parameter sets are shown (``exact keys=email``). A
    supervised matcher (tag ``needs_labels``) is marked ``(held-out)``: its metrics
    cover the persons it did not learn from.
    """
    by_name: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    supervised: set[str] = set()
    for rec in records:
        m = rec.get("matcher") or {}
        params = m.get("params") or {}
        by_name[str(m.get("name"))][_canon(params)] = params
        if "needs_labels" in (m.get("tags") or ()):
            supervised.add(str(m.get("name")))
    out: dict[str, str] = {}
    for name, configs in by_name.items():
        keys = sorted({k for p in configs.values() for k in p})
        varying = [k for k in keys if len({_canon(p.get(k)) for p in configs.values()}) > 1]
        # a supervised matcher is scored on its held-out persons only: say so wherever
        # its label appears beside the others
        shown = f"{name} (held-out)" if name in supervised else name
        for canon, params in configs.items():
            parts = [f"{k}={_fmt_value(params[k])}" for k in varying if k in params]
            label = " ".join([shown, ", ".join(parts)]) if parts else shown
            if len(label) > _LABEL_MAX:
                label = label[: _LABEL_MAX - 1] + "\u2026"
            out[_config_key(name, canon)] = label
    # truncation may make two labels equal: number the later ones
    seen: dict[str, int] = {}
    for key in sorted(out):
        label = out[key]
        if label in seen:
            seen[label] += 1
            out[key] = f"{label} #{seen[label]}"
        else:
            seen[label] = 1
    return out


def _config_key(name: str, canon_params: str) -> str:
    return f"{name}\x00{canon_params}"


# --- the stored results -----------------------------------------------------------------


@dataclass
class Results:
    """The run records of one suite, with the labels and colours every figure shares.

    Parameters
    ----------
    records
        Run records as stored (see :mod:`bench.run.results`).
    suite_dir
        The suite's results directory (raw outputs live under ``raw/``), if known.
    """

    records: list[dict[str, Any]]
    suite_dir: Path | None = None
    #: When set, single-dataset figures draw this dataset (fingerprint) instead of the
    #: primary one; :func:`render_all` sets it to draw those figures per dataset.
    focus: str | None = None
    labels: dict[str, str] = field(init=False)
    colours: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = short_labels(self.records)
        ordered = sorted(set(self.labels.values()))
        self.colours = {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(ordered)}

    @classmethod
    def load(cls, suite_dir: str | Path) -> Results:
        """Every stored run record under ``suite_dir``."""
        suite_dir = Path(suite_dir)
        return cls(load_records(suite_dir), suite_dir=suite_dir)

    @property
    def suite(self) -> str:
        """Name of the suite (from the records, else the directory)."""
        for rec in self.records:
            if rec.get("suite"):
                return str(rec["suite"])
        return self.suite_dir.name if self.suite_dir else "suite"

    def label(self, rec: dict[str, Any]) -> str:
        """Short label of a record's matcher configuration."""
        m = rec.get("matcher") or {}
        return self.labels[_config_key(str(m.get("name")), _canon(m.get("params") or {}))]

    def colour(self, label: str) -> str:
        """Colour of a matcher label (stable across all figures of these results)."""
        return self.colours.get(label, "#333333")

    def kind(self, rec: dict[str, Any]) -> str:
        """Deterministic, probabilistic or hybrid (see :func:`matcher_kind`)."""
        return matcher_kind(rec.get("matcher") or {})

    def ok(self) -> list[dict[str, Any]]:
        """Records of runs that finished with status ``ok``."""
        return [r for r in self.records if r.get("status") == "ok"]

    def raw_dir(self, rec: dict[str, Any]) -> Path | None:
        """Directory of a run's raw outputs, if the suite directory is known."""
        return self.suite_dir / "raw" / rec["run_key"] if self.suite_dir else None

    def primary_dataset(self, records: Sequence[dict[str, Any]] | None = None) -> str | None:
        """Fingerprint of the dataset most runs used (ties: the largest).

        Figures that compare matchers at one operating point (Pareto, precision-recall,
        hazards, monthly) draw the runs on this dataset only.
        """
        recs = self.ok() if records is None else list(records)
        if self.focus is not None:
            return self.focus if any(dataset_key(r) == self.focus for r in recs) else None
        count: dict[str, int] = defaultdict(int)
        size: dict[str, int] = {}
        for r in recs:
            fp = dataset_key(r)
            count[fp] += 1
            size[fp] = int((r.get("dataset") or {}).get("n_records") or 0)
        if not count:
            return None
        return max(count, key=lambda fp: (count[fp], size[fp], fp))


def dataset_key(rec: dict[str, Any]) -> str:
    """Identity of a record's dataset (its fingerprint, else its name)."""
    ds = rec.get("dataset") or {}
    return str(ds.get("fingerprint") or ds.get("name"))


def _dataset_name(rec: dict[str, Any]) -> str:
    ds = rec.get("dataset") or {}
    return f"{ds.get('name')} ({int(ds.get('n_records') or 0):,} records)"


def _person(rec: dict[str, Any]) -> dict[str, Any]:
    return rec.get("person") or {}


def _field(rec: dict[str, Any], name: str) -> Any:
    """A per-run series (``curves``, ``hazards``, ``monthly``): top level or under person."""
    value = rec.get(name)
    if value is None:
        value = _person(rec).get(name)
    if isinstance(value, list):
        # rows of several truth levels: the figures draw the person level
        value = [row for row in value if row.get("level", "person") == "person"]
    return value or None


def records_per_s(rec: dict[str, Any]) -> float | None:
    """Records matched per second of fit + match, or None."""
    v = (rec.get("throughput") or {}).get("records_per_s")
    return float(v) if v else None


def match_seconds(rec: dict[str, Any]) -> float | None:
    """Seconds of fit + match, or None when the run did not get that far."""
    t = rec.get("timings") or {}
    if "match" not in t:
        return None
    return float(t.get("fit") or 0.0) + float(t.get("match") or 0.0)


# --- drawing results --------------------------------------------------------------------


@dataclass
class Drawing:
    """A drawn figure before it is saved.

    Parameters
    ----------
    fig
        The matplotlib figure.
    title
        Heading for the report.
    caption
        Plain-language description of what the figure shows and who wins where.
    runs
        The records behind the figure.
    labels
        Matcher labels drawn (their colours go into the sidecar).
    data
        Extra JSON-serialisable facts for the sidecar (e.g. fitted exponents).
    """

    fig: Figure
    title: str
    caption: str
    runs: list[dict[str, Any]]
    labels: list[str]
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    """A figure that cannot be drawn from these records.

    Parameters
    ----------
    title
        Heading the figure would have had.
    reason
        What the records lack.
    hint
        Which suite or command stores the missing data.
    """

    title: str
    reason: str
    hint: str


@dataclass(frozen=True)
class Rendered:
    """A figure saved to disk."""

    name: str
    title: str
    caption: str
    files: dict[str, Path]
    run_ids: list[str]


FigureFunc = Callable[[Results], "Drawing | Skip"]


def _new_figure(ncols: int = 1, *, width: float = 8.0, height: float = 5.0, **kw: Any) -> tuple:
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), layout="constrained", **kw)
    return fig, axes


def _handles(results: Results, labels: Iterable[str], kinds: dict[str, str], **kw: Any) -> list:
    handles = []
    for lab in sorted(set(labels), key=lambda x: (KINDS.index(kinds[x]), x)):
        handles.append(
            Line2D(
                [],
                [],
                color=results.colour(lab),
                marker=_MARKER[kinds[lab]],
                linestyle=kw.get("linestyle", _LINESTYLE[kinds[lab]]) if kw.get("lines") else "",
                markersize=7,
                label=kw.get("suffix", {}).get(lab, f"{lab} ({KIND_SHORT[kinds[lab]]})"),
            )
        )
    return handles


def _legend(
    fig: Figure, handles: list, *, title: str = "matcher (lens)", below: bool = False
) -> None:
    """One legend for the figure, outside the axes so it never covers data.

    Single-panel figures put it on the right; multi-panel figures (``below``) put it
    under the panels in up to four columns, which keeps the panels wide.
    """
    if not handles:
        return
    if below:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(4, len(handles)),
            title=title,
            fontsize=9,
            title_fontsize=9,
        )
    else:
        fig.legend(
            handles=handles, loc="outside right upper", title=title, fontsize=9, title_fontsize=9
        )


def save_drawing(
    drawing: Drawing, name: str, out_dir: Path, results: Results, *, stem: str | None = None
) -> Rendered:
    """Save a drawing as PNG, SVG and a JSON sidecar; close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or name
    files = {
        "png": out_dir / f"{stem}.png",
        "svg": out_dir / f"{stem}.svg",
        "json": out_dir / f"{stem}.json",
    }
    # a fixed date keeps the SVG byte-identical across rebuilds of the same results
    drawing.fig.savefig(files["png"], dpi=DPI, metadata={"Software": None})
    drawing.fig.savefig(files["svg"], metadata={"Date": None, "Creator": None})
    plt.close(drawing.fig)
    runs = sorted(drawing.runs, key=lambda r: (r.get("started_at") or "", r.get("run_key")))
    sidecar = {
        "figure": name,
        "title": drawing.title,
        "suite": results.suite,
        "caption": drawing.caption,
        "run_ids": [r.get("run_id") for r in runs],
        "run_keys": [r.get("run_key") for r in runs],
        "colours": {lab: results.colour(lab) for lab in sorted(set(drawing.labels))},
        "files": {k: p.name for k, p in files.items() if k != "json"},
        **({"data": drawing.data} if drawing.data else {}),
    }
    files["json"].write_text(json.dumps(sidecar, indent=2, default=str) + "\n", encoding="utf-8")
    return Rendered(name, drawing.title, drawing.caption, files, sidecar["run_ids"])


# --- pareto -----------------------------------------------------------------------------


def _pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both x and y (higher is better)."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def fig_pareto(results: Results) -> Drawing | Skip:
    """B-cubed F1 vs records/s on the primary dataset, with the Pareto frontier."""
    title = "Quality vs throughput"
    usable = [
        r for r in results.ok() if records_per_s(r) and _person(r).get("bcubed_f1") is not None
    ]
    fp = results.primary_dataset(usable)
    if fp is None:
        return Skip(
            title,
            "no successful run with both a B-cubed F1 and a throughput",
            "any suite: `idbench run SUITE`",
        )
    runs = [r for r in usable if dataset_key(r) == fp]
    fig, ax = _new_figure(width=9.0, height=5.2)
    kinds = {results.label(r): results.kind(r) for r in runs}
    pts = [(records_per_s(r), _person(r)["bcubed_f1"]) for r in runs]
    for r, (x, y) in zip(runs, pts, strict=True):
        lab = results.label(r)
        ax.scatter(
            x,
            y,
            color=results.colour(lab),
            marker=_MARKER[kinds[lab]],
            s=55,
            zorder=3,
            edgecolors="white",
            linewidths=0.6,
        )
    front = _pareto_front(pts)
    fx = [pts[i][0] for i in front]
    fy = [pts[i][1] for i in front]
    ax.set_xscale("log")
    ax.set_xlabel("throughput (records/s, log scale; fit + match time)")
    ax.set_ylabel(f"{metric_label('bcubed_f1')} (person)")
    ax.set_ylim(min(0.0, min(fy) - 0.05), 1.02)
    _pad_log_x(ax, [p[0] for p in pts])
    # The staircase bounds what is attainable: from the left edge at the best quality,
    # down at each frontier point, to the axis at the fastest run (ann-benchmarks style).
    x_left = ax.get_xlim()[0]
    ax.step(
        [x_left, *fx, fx[-1]],
        [fy[0], *fy, ax.get_ylim()[0]],
        where="pre",
        color="#444444",
        lw=1.2,
        ls=":",
        zorder=2,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(f"{title} on {_dataset_name(runs[0])}", fontsize=11)
    handles = _handles(results, kinds, kinds)
    handles.append(Line2D([], [], color="#444444", ls=":", label="Pareto frontier"))
    _legend(fig, handles)

    best = max(runs, key=lambda r: (_person(r)["bcubed_f1"], records_per_s(r)))
    fast = max(runs, key=lambda r: (records_per_s(r), _person(r)["bcubed_f1"]))
    frontier = [results.label(runs[i]) for i in front]
    if best is fast:
        who = (
            f"The most accurate run is also the fastest: {results.label(best)} (B-cubed F1 "
            f"{_person(best)['bcubed_f1']:.3f}, {records_per_s(best):,.0f} records/s). "
        )
    else:
        who = (
            f"The highest B-cubed F1 is {_person(best)['bcubed_f1']:.3f} "
            f"({results.label(best)}, {records_per_s(best):,.0f} records/s); the fastest is "
            f"{results.label(fast)} at {records_per_s(fast):,.0f} records/s "
            f"(B-cubed F1 {_person(fast)['bcubed_f1']:.3f}). "
        )
    caption = (
        f"Each point is one run on {_dataset_name(runs[0])}: B-cubed F1 (higher is better) "
        f"against records matched per second (further right is faster, log scale). "
        + who
        + "The dotted staircase is the Pareto frontier: no run is both faster and more "
        f"accurate than those on it ({', '.join(dict.fromkeys(frontier))})."
        + _lens_sentence(results, runs, lambda r: _person(r)["bcubed_f1"], "B-cubed F1")
        + _others_sentence(results, fp)
    )
    return Drawing(
        fig,
        title,
        caption,
        runs,
        list(kinds),
        {"frontier_run_keys": [runs[i]["run_key"] for i in front]},
    )


def _others_sentence(results: Results, shown: str) -> str:
    """' Runs on the other N dataset(s) are in the results table.' when there are any."""
    others = {dataset_key(r) for r in results.ok()} - {shown}
    if not others:
        return ""
    return (
        f" The figure shows the dataset with the most runs; the {len(others)} other "
        f"dataset(s) are in the results table."
    )


def _pad_log_x(ax: Any, xs: Sequence[float]) -> None:
    lo, hi = min(xs), max(xs)
    if lo == hi:
        ax.set_xlim(lo / 3, hi * 3)
    else:
        ax.set_xlim(lo / 1.6, hi * 1.6)


def _lens_sentence(
    results: Results,
    runs: Sequence[dict[str, Any]],
    key: Callable[[dict[str, Any]], float],
    what: str,
) -> str:
    """' Best deterministic: X (0.9); best probabilistic: Y (0.95).' over the given runs."""
    parts = []
    for kind in KINDS:
        of_kind = [r for r in runs if results.kind(r) == kind]
        if of_kind:
            best = max(of_kind, key=key)
            parts.append(f"best {kind}: {results.label(best)} ({key(best):.3f})")
    if len(parts) < 2:
        return ""
    return f" By lens ({what}), " + "; ".join(parts) + "."


# --- precision vs recall ----------------------------------------------------------------


def fig_precision_recall(results: Results) -> Drawing | Skip:
    """Pairwise precision vs recall: a point per run, threshold curves where stored."""
    title = "Precision vs recall"
    usable = [
        r
        for r in results.ok()
        if _person(r).get("precision") is not None and _person(r).get("recall") is not None
    ]
    fp = results.primary_dataset(usable)
    if fp is None:
        return Skip(
            title,
            "no successful run with pairwise precision and recall",
            "any suite: `idbench run SUITE`",
        )
    runs = [r for r in usable if dataset_key(r) == fp]
    unplaced = sorted(
        {results.label(r) for r in results.ok() if dataset_key(r) == fp and r not in usable}
    )
    fig, ax = _new_figure(width=8.5, height=6.0)
    # iso-F1 contours: where a point sits relative to them reads as its F1
    rr, pp = np.meshgrid(np.linspace(0.001, 1.02, 300), np.linspace(0.001, 1.02, 300))
    cs = ax.contour(
        rr,
        pp,
        2 * rr * pp / (rr + pp),
        levels=[0.2, 0.4, 0.6, 0.8, 0.9],
        colors="#bbbbbb",
        linewidths=0.7,
        zorder=1,
    )
    ax.clabel(cs, fmt="F1=%.1f", fontsize=7, colors="#999999")
    kinds = {results.label(r): results.kind(r) for r in runs}
    n_curves = 0
    for r in runs:
        lab = results.label(r)
        curve = _field(r, "curves")
        if curve:
            pts = sorted(
                (
                    c
                    for c in curve
                    if c.get("precision") is not None and c.get("recall") is not None
                ),
                key=lambda c: c.get("threshold", 0),
            )
            if pts:
                n_curves += 1
                ax.plot(
                    [c["recall"] for c in pts],
                    [c["precision"] for c in pts],
                    color=results.colour(lab),
                    ls=_LINESTYLE[kinds[lab]],
                    lw=1.4,
                    alpha=0.85,
                    zorder=2,
                )
        m = _person(r)
        ax.scatter(
            m["recall"],
            m["precision"],
            color=results.colour(lab),
            marker=_MARKER[kinds[lab]],
            s=60,
            zorder=3,
            edgecolors="black",
            linewidths=0.6,
        )
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{metric_label('recall')} (share of true pairs found)")
    ax.set_ylabel(f"{metric_label('precision')} (share of predicted pairs that are true)")
    ax.set_title(f"{title} on {_dataset_name(runs[0])}", fontsize=11)
    ax.grid(True, alpha=0.3)
    handles = _handles(results, kinds, kinds, lines=n_curves > 0)
    if n_curves:
        handles.append(
            Line2D([], [], color="#444444", marker="o", mec="black", ls="", label="run's threshold")
        )
    _legend(fig, handles)

    best = max(runs, key=lambda r: _person(r).get("f1") or 0.0)
    prec = max(runs, key=lambda r: (_person(r)["precision"], _person(r)["recall"]))
    rec_ = max(runs, key=lambda r: (_person(r)["recall"], _person(r)["precision"]))
    by_kind = []
    for kind in KINDS:
        ks = [r for r in runs if results.kind(r) == kind]
        if ks:
            by_kind.append(
                f"{kind.capitalize()} runs average precision "
                f"{statistics.fmean(_person(r)['precision'] for r in ks):.3f} and recall "
                f"{statistics.fmean(_person(r)['recall'] for r in ks):.3f}"
            )
    caption = (
        f"Each marker is one run on {_dataset_name(runs[0])}: the share of predicted "
        f"same-person pairs that are true (up) against the share of true pairs found "
        f"(right); grey lines are equal-F1 contours. "
        + (
            f"Lines show {n_curves} run(s) with stored threshold sweeps: precision and recall "
            f"as the match threshold moves. "
            if n_curves
            else ""
        )
        + f"The best pairwise F1 is {_person(best).get('f1') or 0:.3f} ({results.label(best)}); "
        f"the most precise is {results.label(prec)} ({_person(prec)['precision']:.3f}), "
        f"the most complete {results.label(rec_)} (recall {_person(rec_)['recall']:.3f}). "
        + (". ".join(by_kind) + "." if by_kind else "")
        + (
            f" Not shown: {', '.join(unplaced)} (no predicted pairs, so precision is undefined)."
            if unplaced
            else ""
        )
        + _others_sentence(results, fp)
    )
    return Drawing(fig, title, caption, runs, list(kinds), {"curves": n_curves})


# --- degradation ------------------------------------------------------------------------


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value


def recipe_knobs(recipe: Any) -> dict[str, Any]:
    """The knobs of a dataset's recipe as ``{dotted.key: value}``.

    Uses the resolved ``params`` when the recipe stores them, else every non-descriptive
    key; ``size`` and ``key=value`` strings in ``overrides`` are included.
    """
    if not isinstance(recipe, dict):
        return {}
    flat: dict[str, Any] = {}
    params = recipe.get("params")
    if isinstance(params, dict):
        _flatten(params, "", flat)
    else:
        _flatten({k: v for k, v in recipe.items() if k not in _RECIPE_META}, "", flat)
    overrides = recipe.get("overrides")
    if isinstance(overrides, dict):
        for k, v in overrides.items():
            flat[str(k)] = v
    elif isinstance(overrides, list | tuple):
        for item in overrides:
            if isinstance(item, str) and "=" in item:
                k, v = item.split("=", 1)
                try:
                    flat[k.strip()] = json.loads(v)
                except json.JSONDecodeError:
                    flat[k.strip()] = v.strip()
    if "size" in recipe:
        flat["size"] = recipe["size"]
    return flat


@dataclass(frozen=True)
class Sweep:
    """The recipe knob a suite varies, and its value on each swept dataset."""

    knob: str
    covaried: tuple[str, ...]
    values: dict[str, Any]  # fingerprint -> value

    @property
    def numeric(self) -> bool:
        """True when every value is a number (a numeric x axis)."""
        return all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in self.values.values()
        )


def find_sweep(records: Sequence[dict[str, Any]]) -> Sweep | None:
    """Detect the recipe knob varied across the datasets of ``records``.

    Keys that change together (the same partition of the datasets) count as one knob,
    named by the first; size keys never count. The datasets swept are those equal on
    every other key; the knob with the most distinct values wins (numeric first).
    """
    knobs: dict[str, dict[str, Any]] = {}
    for r in records:
        knobs.setdefault(dataset_key(r), recipe_knobs((r.get("dataset") or {}).get("recipe")))
    if len(knobs) < 2:
        return None
    fps = sorted(knobs)
    keys = sorted({k for kn in knobs.values() for k in kn})
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for k in keys:
        vals = [_canon(knobs[fp].get(k)) for fp in fps]
        if k in _SIZE_KEYS or len(set(vals)) < 2:
            continue
        first: dict[str, int] = {}
        groups[tuple(first.setdefault(v, len(first)) for v in vals)].append(k)
    best: tuple[tuple, Sweep] | None = None
    for ks in groups.values():
        rest = [k for k in keys if k not in ks]
        buckets: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for fp in fps:
            buckets[tuple(_canon(knobs[fp].get(k)) for k in rest)].append(fp)
        for members in buckets.values():
            values = {fp: knobs[fp].get(ks[0]) for fp in members}
            sweep = Sweep(ks[0], tuple(ks[1:]), values)
            n_distinct = len({_canon(v) for v in values.values()})
            if n_distinct < 2:
                continue
            score = (n_distinct, sweep.numeric, len(members), ks[0])
            if best is None or score > best[0]:
                best = (score, sweep)
    return best[1] if best else None


def _knob_unit(knob: str) -> str | None:
    parts = knob.split(".")
    try:
        from bench.data.recipes import KNOBS

        return KNOBS[parts[0]][parts[1]].unit
    except (ImportError, KeyError, IndexError, AttributeError):
        return None


def fig_degradation(results: Results) -> Drawing | Skip:
    """Pairwise and B-cubed F1 vs the swept recipe knob, one line per matcher."""
    title = "Degradation"
    sweep = find_sweep(results.ok())
    if sweep is None:
        return Skip(
            title,
            "the suite's datasets do not differ in one recipe knob (no noise or hazard sweep)",
            "a sweep suite: several `[[datasets]]` of one recipe and size differing in one "
            'override, e.g. `overrides = {"noise.typo.crm_family" = 0.3}`; '
            "then `idbench run SUITE`",
        )
    runs = [r for r in results.ok() if dataset_key(r) in sweep.values]
    if sweep.numeric:
        xpos = {fp: float(v) for fp, v in sweep.values.items()}
        ticks = None
    else:
        order = sorted({_fmt_value(v) for v in sweep.values.values()})
        xpos = {fp: float(order.index(_fmt_value(v))) for fp, v in sweep.values.items()}
        ticks = order
    fig, axes = _new_figure(2, width=11.0, height=5.2, sharey=True)
    kinds = {results.label(r): results.kind(r) for r in runs}
    series: dict[str, dict[float, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        series[results.label(r)][xpos[dataset_key(r)]].append(r)
    summary: dict[str, dict[str, float]] = {}
    for ax, key in zip(axes, ("f1", "bcubed_f1"), strict=True):
        for lab, pts in sorted(series.items()):
            xs = sorted(pts)
            ys = [_median([_person(r).get(key) for r in pts[x]]) for x in xs]
            keep = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
            if not keep:
                continue
            ax.plot(
                [x for x, _ in keep],
                [y for _, y in keep],
                color=results.colour(lab),
                ls=_LINESTYLE[kinds[lab]],
                marker=_MARKER[kinds[lab]],
                lw=1.6,
            )
            if key == "bcubed_f1":
                summary[lab] = {"first": keep[0][1], "last": keep[-1][1]}
        ax.set_ylabel(f"{metric_label(key)} (person)")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        unit = _knob_unit(sweep.knob)
        ax.set_xlabel(f"{sweep.knob}" + (f" ({unit})" if unit else ""))
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=20, ha="right")
        ax.set_title(metric_label(key), fontsize=10)
    # Knobs that move together are listed in the caption; the title names the first only.
    also = f" and {len(sweep.covaried)} knob(s) moving with it" if sweep.covaried else ""
    fig.suptitle(f"{title}: F1 as {sweep.knob}{also} grows", fontsize=11)
    _legend(fig, _handles(results, kinds, kinds, lines=True), below=True)

    xs_sorted = sorted(set(xpos.values()))
    lo_fp = [fp for fp, x in xpos.items() if x == xs_sorted[0]]
    hi_fp = [fp for fp, x in xpos.items() if x == xs_sorted[-1]]

    def best_at(fps: list[str]) -> dict[str, Any]:
        return max(
            (r for r in runs if dataset_key(r) in fps),
            key=lambda r: _person(r).get("bcubed_f1") or 0.0,
        )

    lo_v = _fmt_value(sweep.values[lo_fp[0]])
    hi_v = _fmt_value(sweep.values[hi_fp[0]])
    drops = []
    for kind in KINDS:
        labs = [lab for lab in summary if kinds[lab] == kind]
        if labs:
            d = statistics.fmean(summary[lab]["last"] - summary[lab]["first"] for lab in labs)
            drops.append(f"by {d:+.3f} on average for {kind} matchers")
    b_lo, b_hi = best_at(lo_fp), best_at(hi_fp)
    caption = (
        f"Each line is one matcher on datasets that differ only in {sweep.knob}"
        + (f" (moving with {', '.join(sweep.covaried)})" if sweep.covaried else "")
        + ": "
        f"pairwise F1 (left) and B-cubed F1 (right) as the knob goes from {lo_v} to {hi_v}. "
        f"Solid lines are deterministic matchers, dashed probabilistic. "
        f"From {lo_v} to {hi_v}, B-cubed F1 changes "
        + ", ".join(drops)
        + f". At {sweep.knob} = {lo_v} the best is {results.label(b_lo)} "
        f"({_person(b_lo)['bcubed_f1']:.3f}); at {hi_v} it is {results.label(b_hi)} "
        f"({_person(b_hi)['bcubed_f1']:.3f})."
    )
    data = {
        "knob": sweep.knob,
        "covaried": list(sweep.covaried),
        "values": {fp: v for fp, v in sweep.values.items()},
    }
    return Drawing(fig, title, caption, runs, list(kinds), data)


def _median(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return statistics.median(vals) if vals else None


# --- hazards ----------------------------------------------------------------------------


_HAZARD_PAIRS = {"false_merges": "false_merge_pairs", "missed_merges": "missed_merge_pairs"}


def fig_hazards(results: Results) -> Drawing | Skip:
    """False and missed merges by hazard tag, grouped bars per matcher."""
    title = "Errors by hazard"
    usable = [r for r in results.ok() if _field(r, "hazards")]
    fp = results.primary_dataset(usable)
    if fp is None:
        return Skip(
            title,
            "no run record carries per-hazard error counts (`hazards`)",
            "runs evaluated with per-hazard attribution on a generated dataset (tagged "
            "hazards); `idbench run --recompute` adds them to stored runs",
        )
    runs = [r for r in usable if dataset_key(r) == fp]
    counts: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: {"false_merges": [], "missed_merges": []})
    )
    for r in runs:
        for h in _field(r, "hazards"):
            if h.get("hazard") == "(all)":
                continue  # the total row would dwarf every tag
            for k in ("false_merges", "missed_merges"):
                # record pairs involving a tagged record (bench.metrics.hazards)
                value = h.get(_HAZARD_PAIRS[k], h.get(k))
                counts[results.label(r)][str(h.get("hazard"))][k].append(float(value or 0))
    mean = {
        lab: {
            hz: {k: statistics.fmean(v) if v else 0.0 for k, v in d.items()}
            for hz, d in per.items()
        }
        for lab, per in counts.items()
    }
    hazards = sorted(
        {hz for per in mean.values() for hz in per},
        key=lambda hz: (
            -sum(
                per.get(hz, {}).get(k, 0)
                for per in mean.values()
                for k in ("false_merges", "missed_merges")
            ),
            hz,
        ),
    )
    labels = sorted(
        mean, key=lambda lab: (KINDS.index(results.kind(_first(runs, results, lab))), lab)
    )
    kinds = {lab: results.kind(_first(runs, results, lab)) for lab in labels}
    height = max(4.0, 0.45 * len(hazards) * max(1, len(labels)) ** 0.5 + 2.2)
    fig, axes = _new_figure(2, width=11.0, height=min(height, 12.0), sharey=True)
    y = np.arange(len(hazards))
    bar = 0.8 / max(1, len(labels))
    for ax, key, name in zip(
        axes, ("false_merges", "missed_merges"), ("false merges", "missed merges"), strict=True
    ):
        for i, lab in enumerate(labels):
            vals = [mean[lab].get(hz, {}).get(key, 0.0) for hz in hazards]
            ax.barh(
                y - 0.4 + bar * (i + 0.5),
                vals,
                height=bar,
                color=results.colour(lab),
                hatch=None if kinds[lab] == "deterministic" else "//",
                edgecolor="white",
                linewidth=0.4,
            )
        ax.set_yticks(y, hazards)
        # counts span orders of magnitude (cookie churn vs a handful of typos)
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel(f"{name} (record pairs involving a tagged record; log scale)")
        ax.set_title(
            "false merges: different persons put together"
            if key == "false_merges"
            else "missed merges: one person left split",
            fontsize=10,
        )
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].invert_yaxis()  # the axes share y: inverting once puts the worst hazard on top
    fig.suptitle(f"{title} on {_dataset_name(runs[0])}", fontsize=11)
    handles = [
        Patch(
            facecolor=results.colour(lab),
            hatch=None if kinds[lab] == "deterministic" else "//",
            edgecolor="white",
            label=f"{lab} ({KIND_SHORT[kinds[lab]]})",
        )
        for lab in labels
    ]
    _legend(fig, handles, title="matcher (hatched: probabilistic)", below=True)

    def total(lab: str, key: str) -> float:
        return sum(v[key] for v in mean[lab].values())

    worst_fm = max(
        hazards, key=lambda hz: sum(mean[lab].get(hz, {}).get("false_merges", 0) for lab in labels)
    )
    worst_mm = max(
        hazards, key=lambda hz: sum(mean[lab].get(hz, {}).get("missed_merges", 0) for lab in labels)
    )
    fm_lab = max(labels, key=lambda lab: mean[lab].get(worst_fm, {}).get("false_merges", 0))
    fewest_fm = min(labels, key=lambda lab: (total(lab, "false_merges"), lab))
    fewest_mm = min(labels, key=lambda lab: (total(lab, "missed_merges"), lab))
    caption = (
        f"Errors of each matcher on {_dataset_name(runs[0])} attributed to the hazard planted "
        f"in the data (left: records wrongly merged with another person; right: records "
        f"of one person left apart). The hazard causing most false merges is {worst_fm} "
        f"(mostly {fm_lab}); most missed merges come from {worst_mm}. "
        f"Fewest false merges overall: {fewest_fm} ({total(fewest_fm, 'false_merges'):,.0f}); "
        f"fewest missed merges: {fewest_mm} ({total(fewest_mm, 'missed_merges'):,.0f})."
    )
    return Drawing(fig, title, caption, runs, labels, {"hazards": hazards})


def _first(runs: Sequence[dict[str, Any]], results: Results, label: str) -> dict[str, Any]:
    return next(r for r in runs if results.label(r) == label)


# --- monthly ----------------------------------------------------------------------------


def fig_monthly(results: Results) -> Drawing | Skip:
    """Precision, recall and F1 per month of the horizon, one line per matcher."""
    title = "Quality per month"
    usable = [r for r in results.ok() if _field(r, "monthly")]
    fp = results.primary_dataset(usable)
    if fp is None:
        return Skip(
            title,
            "no run record carries metrics per month (`monthly`)",
            "runs evaluated with temporal metrics on a generated dataset with a time "
            "horizon; `idbench run --recompute` adds them to stored runs",
        )
    runs = [r for r in usable if dataset_key(r) == fp]
    months = sorted({str(m["month"]) for r in runs for m in _field(r, "monthly")})
    kinds = {results.label(r): results.kind(r) for r in runs}
    per: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in runs:
        for m in _field(r, "monthly"):
            for key in ("precision", "recall", "f1"):
                if m.get(key) is not None:
                    per[results.label(r)][key][str(m["month"])].append(float(m[key]))
    fig, axes = _new_figure(3, width=12.0, height=5.0, sharey=True)
    x = np.arange(len(months))
    step = max(1, math.ceil(len(months) / 8))
    for ax, key in zip(axes, ("precision", "recall", "f1"), strict=True):
        for lab in sorted(per):
            pts = [
                (i, statistics.fmean(per[lab][key][mo]))
                for i, mo in enumerate(months)
                if per[lab][key].get(mo)
            ]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    color=results.colour(lab),
                    ls=_LINESTYLE[kinds[lab]],
                    marker=_MARKER[kinds[lab]],
                    markersize=4,
                    lw=1.5,
                )
        ax.set_xticks(x[::step], months[::step], rotation=30, ha="right")
        ax.set_xlabel("month (of the record's timestamp)")
        ax.set_title(metric_label(key), fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("value (person; the month's records vs their whole person)")
    fig.suptitle(f"{title} on {_dataset_name(runs[0])}", fontsize=11)
    _legend(fig, _handles(results, kinds, kinds, lines=True), below=True)

    changes = {}
    for lab in per:
        f1 = [statistics.fmean(per[lab]["f1"][mo]) for mo in months if per[lab]["f1"].get(mo)]
        if len(f1) >= 2:
            changes[lab] = (f1[0], f1[-1])
    if changes:
        worst = min(changes, key=lambda lab: changes[lab][1] - changes[lab][0])
        steady = max(changes, key=lambda lab: (changes[lab][1] - changes[lab][0], lab))
        last_best = max(changes, key=lambda lab: changes[lab][1])
        trend = (
            f" F1 of {worst} moves most, from {changes[worst][0]:.3f} in the first month to "
            f"{changes[worst][1]:.3f} in the last; {steady} holds best "
            f"({changes[steady][0]:.3f} -> {changes[steady][1]:.3f}). In the last month the "
            f"best F1 is {last_best}'s ({changes[last_best][1]:.3f})."
        )
    else:
        trend = ""
    caption = (
        f"Pairwise precision, recall and F1 per calendar month on {_dataset_name(runs[0])}, "
        f"{months[0]} to {months[-1]}: how matching quality changes as cookies, phones and "
        f"e-mail addresses churn." + trend
    )
    return Drawing(fig, title, caption, runs, list(kinds), {"months": months})


# --- scaling ----------------------------------------------------------------------------


def fit_exponent(ns: Sequence[float], ts: Sequence[float]) -> float | None:
    """Least-squares slope of log(t) on log(n): t ~ n^b. None with fewer than 2 sizes."""
    pairs = [(n, t) for n, t in zip(ns, ts, strict=True) if n > 0 and t > 0]
    if len({n for n, _ in pairs}) < 2:
        return None
    lx = np.log([n for n, _ in pairs])
    ly = np.log([t for _, t in pairs])
    slope, _ = np.polyfit(lx, ly, 1)
    return float(slope)


def _size_series(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs on datasets that differ only in size, from the largest such family.

    Datasets are grouped by their recipe knobs other than the size keys; the group with
    the most distinct record counts wins, so a noise sweep at one size does not blur the
    scaling lines. Datasets without a recipe form one group.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        knobs = recipe_knobs((r.get("dataset") or {}).get("recipe"))
        groups[_canon({k: v for k, v in knobs.items() if k not in _SIZE_KEYS})].append(r)
    if not groups:
        return []

    def score(rs: list[dict[str, Any]]) -> tuple[int, int]:
        return (len({(x.get("dataset") or {}).get("n_records") for x in rs}), len(rs))

    return max(groups.values(), key=score)


def fig_scaling(results: Results) -> Drawing | Skip:
    """Match time and records/s vs records (log-log) with the fitted exponent per matcher."""
    title = "Scaling"
    by_label: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in _size_series(results.ok()):
        n = int((r.get("dataset") or {}).get("n_records") or 0)
        if n > 0 and (match_seconds(r) or 0) > 0:
            by_label[results.label(r)][n].append(r)
    scaled = {lab: sizes for lab, sizes in by_label.items() if len(sizes) >= 2}
    if not scaled:
        return Skip(
            title,
            "no matcher ran on datasets of two or more sizes",
            'a scaling suite: one recipe at several sizes (e.g. `size = "tiny"` and '
            '`size = "small"` in two `[[datasets]]`); then `idbench run SUITE`',
        )
    runs = [r for sizes in scaled.values() for rs in sizes.values() for r in rs]
    kinds = {lab: results.kind(next(iter(sizes.values()))[0]) for lab, sizes in scaled.items()}
    fig, (ax_t, ax_r) = _new_figure(2, width=11.0, height=5.4)
    exps: dict[str, float] = {}
    for lab, sizes in sorted(scaled.items()):
        ns = sorted(sizes)
        ts = [_median([match_seconds(r) for r in sizes[n]]) for n in ns]
        b = fit_exponent(ns, ts)
        if b is None:
            continue
        exps[lab] = b
        style = {
            "color": results.colour(lab),
            "ls": _LINESTYLE[kinds[lab]],
            "marker": _MARKER[kinds[lab]],
            "lw": 1.6,
        }
        ax_t.plot(ns, ts, **style)
        ax_r.plot(ns, [n / t for n, t in zip(ns, ts, strict=True)], **style)
    for ax in (ax_t, ax_r):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dataset size (records, log scale)")
        ax.grid(True, which="both", alpha=0.25)
    ax_t.set_ylabel("match time (s, fit + match, log scale)")
    ax_t.set_title("time: lower is better", fontsize=10)
    ax_r.set_ylabel("throughput (records/s, log scale)")
    ax_r.set_title("throughput: higher is better", fontsize=10)
    fig.suptitle(f"{title}: time grows as records^b (b fitted on log-log)", fontsize=11)
    suffix = {lab: f"{lab} ({KIND_SHORT[kinds[lab]]}), b={b:.2f}" for lab, b in exps.items()}
    _legend(fig, _handles(results, exps, kinds, lines=True, suffix=suffix), below=True)

    n_max = max(n for sizes in scaled.values() for n in sizes)
    at_max = [r for r in runs if int(r["dataset"]["n_records"]) == n_max]
    fastest = max(at_max, key=lambda r: records_per_s(r) or 0.0)
    steep = max(exps, key=lambda lab: exps[lab])
    flat = min(exps, key=lambda lab: exps[lab])
    caption = (
        f"Match time (left) and throughput (right) of each matcher on datasets of growing "
        f"size, log-log; b in the legend is the fitted exponent of time ~ records^b "
        f"(b = 1 is linear, b = 2 quadratic). Steepest: {steep} (b = {exps[steep]:.2f}); "
        f"flattest: {flat} (b = {exps[flat]:.2f}). At the largest size ({n_max:,} records) "
        f"the fastest is {results.label(fastest)} at {records_per_s(fastest) or 0:,.0f} records/s."
    )
    return Drawing(fig, title, caption, runs, list(exps), {"exponents": exps})


# --- registry ---------------------------------------------------------------------------

#: Figure name -> function drawing it from :class:`Results` (in report order).
FIGURES: dict[str, FigureFunc] = {
    "pareto": fig_pareto,
    "precision_recall": fig_precision_recall,
    "degradation": fig_degradation,
    "hazards": fig_hazards,
    "monthly": fig_monthly,
    "scaling": fig_scaling,
}


def _remove_stale(out_dir: Path, stem: str) -> None:
    for ext in ("png", "svg", "json"):
        (out_dir / f"{stem}.{ext}").unlink(missing_ok=True)


def render_all(results: Results, out_dir: Path) -> dict[str, Rendered | Skip]:
    """Draw every figure of :data:`FIGURES` into ``out_dir``; skip those without data.

    Files of a figure that is skipped now but was drawn by an earlier build are removed,
    so ``out_dir`` only holds figures of the current results.
    """
    out: dict[str, Rendered | Skip] = {}
    names = {dataset_key(r): str((r.get("dataset") or {}).get("name")) for r in results.ok()}
    primary = results.primary_dataset()
    # the primary dataset first (its figures keep the plain name), then the others
    datasets = sorted(names.items(), key=lambda kv: (kv[0] != primary, kv[1]))
    for name, func in FIGURES.items():
        if name in PER_DATASET and len(datasets) > 1:
            out.update(_render_per_dataset(results, name, func, datasets, out_dir))
            continue
        drawn = func(results)
        if isinstance(drawn, Skip):
            log.info("figure %s not drawn: %s (%s)", name, drawn.reason, drawn.hint)
            _remove_stale(out_dir, name)
            out[name] = drawn
        else:
            out[name] = save_drawing(drawn, name, out_dir, results)
    return out


#: Figures that compare matchers on one dataset; a suite of several datasets gets one each.
PER_DATASET = ("pareto", "precision_recall", "hazards", "monthly")


def _render_per_dataset(
    results: Results,
    name: str,
    func: FigureFunc,
    datasets: list[tuple[str, str]],
    out_dir: Path,
) -> dict[str, Rendered | Skip]:
    """Draw ``name`` per dataset: the first (primary) as ``<name>``, others ``<name>-<dataset>``."""
    for stale in out_dir.glob(f"{name}*.*"):
        stale.unlink()
    out: dict[str, Rendered | Skip] = {}
    last_skip: Skip | None = None
    try:
        for fp, ds_name in datasets:
            results.focus = fp
            drawn = func(results)
            if isinstance(drawn, Skip):
                last_skip = drawn
                log.info("figure %s not drawn for %s: %s", name, ds_name, drawn.reason)
                continue
            stem = name if fp == datasets[0][0] else f"{name}-{ds_name}"
            out[stem] = save_drawing(drawn, name, out_dir, results, stem=stem)
    finally:
        results.focus = None
    if not out and last_skip is not None:
        out[name] = last_skip
    return out


def plot_one(suite_dir: Path, figure: str, out: Path | None = None) -> list[Path]:
    """Draw one figure of a suite's stored results; return the files written.

    Parameters
    ----------
    suite_dir
        The suite's results directory (``results/<suite>``).
    figure
        A key of :data:`FIGURES`.
    out
        Output directory (default ``<suite_dir>/figures``), or a file path ending in
        ``.png`` or ``.svg`` whose stem names the three files written beside it.

    Raises
    ------
    PlotError
        Unknown figure name, or no run records under ``suite_dir``.
    FigureUnavailable
        The records lack the figure's data; the message says which runs add it.
    """
    if figure not in FIGURES:
        msg = f"unknown figure {figure!r} (known: {', '.join(FIGURES)})"
        raise PlotError(msg)
    suite_dir = Path(suite_dir)
    results = Results.load(suite_dir)
    if not results.records:
        msg = f"no run records under {suite_dir / 'runs'}: run the suite first (`idbench run`)"
        raise PlotError(msg)
    stem = None
    if out is None:
        out_dir = suite_dir / "figures"
    elif Path(out).suffix.lower() in (".png", ".svg"):
        out_dir, stem = Path(out).parent, Path(out).stem
    else:
        out_dir = Path(out)
    drawn = FIGURES[figure](results)
    if isinstance(drawn, Skip):
        msg = f"figure {figure!r} cannot be drawn from {suite_dir}: {drawn.reason}. To get it: {drawn.hint}"
        raise FigureUnavailable(msg)
    rendered = save_drawing(drawn, figure, out_dir, results, stem=stem)
    return [rendered.files["png"], rendered.files["svg"], rendered.files["json"]]
