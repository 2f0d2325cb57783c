"""Quality gates: each built-in matcher keeps an F1 floor on fixed seeds of tiny recipes.

Ordinary tests (not benchmarks): they run in ``make test`` and fail when a change makes
a matcher resolve worse. Timing never gates here (shared CI machines are too noisy; the
benchmark JSON records speed instead).

How the floors were set: each matcher was run in-process (``load_inputs`` +
``run_matcher``, then :func:`bench.metrics.evaluate` at person level) on the tiny size
of its recipe with generator seed 1 and matcher seed 1, on the code of commit 99fbfde
(generator version 1). The
comment beside each floor gives that measured value, and seeds 2 and 3 where they show
the spread. Outputs are deterministic for a seed, so the margin (about 5-10% of the
measured value) is not for noise: it lets a harmless change (a generator tweak shifting
a few records) pass while a real regression (a rule dropped, a guard broken, a model no
longer trained) fails.

Which F1: pairwise F1 on the first-party recipe (few records per person; pairwise is the
usual linkage measure and the one the matchers are tuned on); B-cubed F1 where one
person owns many identifiers (identity-graph), as pairwise F1 is dominated there by the
few largest persons. Precision floors are added where precision is the point of the
matcher (guards, login bridge, exact keys). Matchers not registered in the checkout are
skipped.

A floor may be raised when a matcher improves: re-measure and update the comment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench.data.datagen import ensure_generated
from bench.data.dataset import Dataset
from bench.data.sources import prepare
from bench.metrics.core import evaluate
from bench.run.execution import load_inputs, run_matcher
from bench.run.registry import load_matcher_class
from bench.sql import engine

#: every gate generates a dataset and runs a matcher on it.
pytestmark = pytest.mark.slow

SEED = 1
THREADS = 2

#: (matcher, params, dataset, {metric: floor}); dataset is a generated recipe at ``tiny``
#: or a FEBRL set. Measured values (seed 1 unless said) are in the comments.
GATES: list[tuple[str, dict[str, Any], str, dict[str, float]]] = [
    # Baseline sanity: no pair is predicted, so B-cubed precision is exactly 1 and
    # B-cubed F1 is what "do nothing" scores (0.302; seeds 2/3: 0.300/0.308).
    ("singletons", {}, "cdp-realistic", {"bcubed_precision": 1.0, "bcubed_f1": 0.29}),
    # One key: precise but low reach. Measured F1 0.247 (seeds 2/3: 0.226/0.200 - the
    # floor holds for seed 1 only), precision 0.9995.
    ("exact", {"keys": ["email"]}, "cdp-realistic", {"f1": 0.22, "precision": 0.98}),
    # The full cascade with transitive closure: F1 0.581 (seeds 2/3: 0.512/0.540),
    # precision 0.997.
    ("cascade", {}, "cdp-realistic", {"f1": 0.55, "precision": 0.97}),
    # Guards trade a little recall for precision. Generator version 2 (networks sized to
    # a population draw other households): F1 0.512 (seeds 2/3: 0.536/0.560), precision
    # 0.997.
    ("cascade-guarded", {}, "cdp-realistic", {"f1": 0.50, "precision": 0.99}),
    # The cascade where one person owns many identifiers: B-cubed F1 0.540 (seeds 2/3:
    # 0.489/0.450), B-cubed precision 0.928 (family e-mails and recycled phones).
    ("cascade", {}, "identity-graph", {"bcubed_f1": 0.50, "bcubed_precision": 0.90}),
    # Login bridge: the cascade plus the authenticated links (cookie -> account that
    # logged in on it). Generator version 2 (4% of cookies observed): B-cubed F1 0.489
    # (seeds 2/3: 0.415/0.506), B-cubed precision 0.986 (1.000/0.985). identity-graph
    # tiny has only 50 persons, hence the spread.
    # (On dmp-crossdevice there are no logins: nothing to bridge there, by design.)
    ("login-bridge", {}, "identity-graph", {"bcubed_f1": 0.47, "bcubed_precision": 0.90}),
    # Splink on the first-party recipe with its built-in settings: precise, recall
    # limited by blocking and the 0.9 threshold. Version 6 (EM sessions on blocks that
    # do not grow with the data, prior from rules with a personal field): F1 0.704
    # (seeds 2/3: 0.703/0.719), precision 0.997 (0.992/0.994); version 4 measured F1
    # 0.664, precision 0.991; version 3 (no profiles) F1 0.408. Splink is seeded (u
    # sampling, EM) so this is reproducible.
    ("splink", {}, "cdp-realistic", {"f1": 0.62, "precision": 0.96}),
    # Splink where most records are event rows (logins, visits) of few identifiers:
    # B-cubed F1 0.246 (seeds 2/3: 0.244/0.205; the floor holds for seeds 1-2), B-cubed
    # precision 1.000. Without collapsing identical records: 0.026 (nothing links).
    ("splink", {}, "identity-graph", {"bcubed_f1": 0.22, "bcubed_precision": 0.98}),
    # Splink on FEBRL4 (5,000 + 5,000 records, one duplicate each): F1 0.997 (0.9969
    # with version 4: FEBRL compares no identifier, so nothing collapses).
    ("splink", {}, "febrl4", {"f1": 0.98}),
    # recordlinkage (ECM) on the first-party recipe: F1 0.268 (seeds 2/3: 0.259/0.223),
    # precision 0.797 (0.989/0.829) - ECM trades precision for reach here.
    ("recordlinkage", {}, "cdp-realistic", {"f1": 0.24, "precision": 0.75}),
    # recordlinkage on FEBRL4: F1 0.993, precision 0.998.
    ("recordlinkage", {}, "febrl4", {"f1": 0.97, "precision": 0.98}),
    # The two matchers below were measured on their first versions (written in parallel
    # with this file); their authors should re-measure when they settle.
    # Anonymous (cookie/MAID) matcher on the cross-device recipe, where it is the only
    # matcher with evidence to use. Version 2 on generator version 2 (28 days, networks
    # sized to a population): B-cubed F1 0.688 (seeds 2/3: 0.527/0.688), B-cubed
    # precision 0.755 (0.695/0.787). tiny has 60 persons, hence the spread between seeds.
    ("anonymous", {}, "dmp-crossdevice", {"bcubed_f1": 0.62, "bcubed_precision": 0.70}),
    # Hybrid (deterministic first-party + anonymous bridges) on identity-graph: version 2
    # (each identifier's strongest link plus posterior >= 0.9, windowed IP privateness)
    # measured B-cubed F1 0.662, B-cubed precision 0.808 on seed 1 (version 1: 0.565 /
    # 0.885): more recall for some precision, as intended; floors keep a ~0.03-0.06 margin.
    ("hybrid", {}, "identity-graph", {"bcubed_f1": 0.60, "bcubed_precision": 0.77}),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Dataset]:
    """``dataset(name)``: a generated recipe at ``tiny`` (seed 1) or a FEBRL set, cached."""
    root = tmp_path_factory.mktemp("gate-datasets")
    cache: dict[str, Dataset] = {}

    def get(name: str) -> Dataset:
        if name not in cache:
            path = (
                prepare(name, out=root / name)
                if name.startswith("febrl")
                else ensure_generated(name, "tiny", SEED, root)
            )
            cache[name] = Dataset.open(path)
        return cache[name]

    return get


def person_metrics(name: str, params: dict[str, Any], ds: Dataset) -> dict[str, Any]:
    """Run ``name(**params)`` on ``ds`` in-process; person-level metrics of its clusters."""
    try:
        cls = load_matcher_class(name)
    except Exception as exc:  # noqa: BLE001 - not registered in this checkout
        pytest.skip(f"matcher {name!r} is not available: {exc}")
    con = engine.connect(threads=THREADS)
    try:
        ctx = load_inputs(con, ds.records_path, ds.tables, seed=SEED, threads=THREADS)
        outcome = run_matcher(cls(**params), ctx)
        engine.register_arrow(con, "gate_clusters", outcome.clusters)
        engine.register_parquet(con, "gate_truth", ds.truth_path)
        return evaluate(con, "gate_clusters", "gate_truth", entity="person_id")
    finally:
        con.close()


@pytest.mark.parametrize(
    ("name", "params", "data", "floors"),
    GATES,
    ids=[f"{g[0]}-{g[2]}" for g in GATES],
)
def test_quality_floor(
    dataset: Callable[[str], Dataset],
    name: str,
    params: dict[str, Any],
    data: str,
    floors: dict[str, float],
) -> None:
    m = person_metrics(name, params, dataset(data))
    measured = {k: m[k] for k in floors}
    below = {k: v for k, v in measured.items() if v is None or v < floors[k]}
    assert not below, (
        f"{name} on {data} (tiny, seed {SEED}) fell below its quality floor: "
        f"measured {measured}, floors {floors}. If the drop is intended, re-measure and "
        "update the floor and its comment in tests/matchers/test_quality_gates.py."
    )
