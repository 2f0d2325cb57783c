"""The stored run records of one suite, as the report and its figures read them.

:class:`Results` loads ``results/<suite>/runs/*.json`` (:func:`bench.run.results.load_records`)
and gives every matcher configuration its short label, colour and lens once, so all
tables and figures of a report agree. The functions below read one record's fields the
way every figure does (missing values are ``None``, series are the person level).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import LENSES
from bench.report.style import LENS_ORDER, UNSPECIFIED, colour_map
from bench.run.labels import record_key, short_labels
from bench.run.results import load_records

__all__ = [
    "Results",
    "dataset_key",
    "dataset_title",
    "matcher_lens",
    "person",
    "records_per_s",
    "series",
]


def matcher_lens(matcher: Mapping[str, Any]) -> str:
    """The lens of a record's ``matcher`` entry: the one the matcher declared.

    The runner stores the matcher class's ``lens`` (one of :data:`bench.api.LENSES`) as
    ``matcher.lens``; an empty or unknown one (a plugin that declares none) is
    ``unspecified``. Records stored before matchers declared a lens have no ``lens`` key
    and fall back on the tags only: a matcher that emits scored pairs counts as
    probabilistic, any other as deterministic (so a hybrid or a baseline of such a record
    shows as one of those two until it is run again, ``idbench run --force``).
    """
    if "lens" not in matcher:
        return "probabilistic" if "emits_pairs" in (matcher.get("tags") or ()) else "deterministic"
    lens = matcher.get("lens")
    return str(lens) if lens in LENSES else UNSPECIFIED


def dataset_key(rec: Mapping[str, Any]) -> str:
    """Identity of a record's dataset (its fingerprint, else its name)."""
    ds = rec.get("dataset") or {}
    return str(ds.get("fingerprint") or ds.get("name"))


def dataset_title(rec: Mapping[str, Any]) -> str:
    """``name (N records)`` of a record's dataset, for titles and captions."""
    ds = rec.get("dataset") or {}
    return f"{ds.get('name')} ({int(ds.get('n_records') or 0):,} records)"


def person(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The person-level metrics of a record (empty when the run has none)."""
    return rec.get("person") or {}


def series(rec: Mapping[str, Any], name: str) -> Any:
    """A per-run series (``curves``, ``hazards``, ``monthly``): top level or under person.

    Rows of several truth levels are narrowed to the person level, which the figures
    draw; ``None`` when the run has no such series.
    """
    value = rec.get(name)
    if value is None:
        value = person(rec).get(name)
    if isinstance(value, list):
        value = [row for row in value if row.get("level", "person") == "person"]
    return value or None


def records_per_s(rec: Mapping[str, Any]) -> float | None:
    """Records matched per second of fit + match, or None."""
    v = (rec.get("throughput") or {}).get("records_per_s")
    return float(v) if v else None


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
    #: primary one; :func:`bench.report.figures.render_all` sets it to draw those
    #: figures per dataset.
    focus: str | None = None
    labels: dict[str, str] = field(init=False)
    colours: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.labels = short_labels(self.records)
        self.colours = colour_map(self.labels.values())

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

    def label(self, rec: Mapping[str, Any]) -> str:
        """Short label of a record's matcher configuration."""
        return self.labels[record_key(rec)]

    def colour(self, label: str) -> str:
        """Colour of a matcher label (stable across all figures of these results)."""
        return self.colours.get(label, "#333333")

    def lens(self, rec: Mapping[str, Any]) -> str:
        """The lens of a record's matcher (see :func:`matcher_lens`)."""
        return matcher_lens(rec.get("matcher") or {})

    def by_lens(self, runs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """``runs`` grouped by lens, in :data:`~bench.report.style.LENS_ORDER` (no empty groups)."""
        groups = {lens: [r for r in runs if self.lens(r) == lens] for lens in LENS_ORDER}
        return {lens: rs for lens, rs in groups.items() if rs}

    def ok(self) -> list[dict[str, Any]]:
        """Records of runs that finished with status ``ok``."""
        return [r for r in self.records if r.get("status") == "ok"]

    def raw_dir(self, rec: Mapping[str, Any]) -> Path | None:
        """Directory of a run's raw outputs, if the suite directory is known."""
        return self.suite_dir / "raw" / rec["run_key"] if self.suite_dir else None

    def primary_dataset(self, records: Sequence[dict[str, Any]] | None = None) -> str | None:
        """Fingerprint of the dataset most runs used (ties: the largest).

        Figures that compare matchers at one operating point (Pareto, precision-recall,
        hazards, monthly) draw the runs on this dataset only; with :attr:`focus` set,
        that dataset (None when none of ``records`` is on it).
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

    def on_primary_dataset(
        self, records: Sequence[dict[str, Any]]
    ) -> tuple[str, list[dict[str, Any]]] | None:
        """The primary dataset of ``records`` (:meth:`primary_dataset`) and their runs on it.

        None when ``records`` is empty (or none is on the :attr:`focus` dataset).
        """
        fp = self.primary_dataset(records)
        if fp is None:
            return None
        return fp, [r for r in records if dataset_key(r) == fp]
