"""The anonymous (DMP) and hybrid matchers on generated tiny datasets.

Quality floors come from real runs on seed 1 (tiny recipes), with a margin: the tiny
worlds hold only ~50 persons, so the numbers move with any change to the generator;
the floors guard against breakage (a matcher that stops linking, or links everything),
not against small shifts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.api import BaseMatcher
from bench.data.datagen import ensure_generated
from bench.metrics.core import evaluate
from bench.run.execution import load_inputs, run_matcher
from bench.sql.engine import connect, materialise
from matchers.anonymous import FEATURES, Anonymous, fellegi_sunter_em
from matchers.bridges import LoginBridge
from matchers.cascade import CascadeGuarded
from matchers.hybrid import Hybrid

#: generates tiny anonymous datasets and runs the cross-device matchers on them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("anon_data")


def _dataset(name: str, root: Path) -> Path:
    return ensure_generated(name, size="tiny", seed=1, root=root)


def _run(matcher: BaseMatcher, d: Path) -> dict[str, Any]:
    con = connect(threads=2)
    try:
        tables = {p.stem: str(p) for p in (d / "tables").glob("*.parquet")}
        ctx = load_inputs(con, str(d / "records.parquet"), tables, seed=1, threads=2)
        out = run_matcher(matcher, ctx)
        con.register("clu", out.clusters)
        con.sql(f"CREATE VIEW truth AS SELECT * FROM '{d}/truth/records.parquet'")
        metrics = evaluate(con, "clu", "truth", entity="person_id")
        n_records = con.sql(f"SELECT count(*) FROM {ctx.records}").fetchall()[0][0]
        return {"outcome": out, "metrics": metrics, "n_records": n_records}
    finally:
        con.close()


@pytest.fixture(scope="module")
def dmp(data_root: Path) -> dict[str, dict[str, Any]]:
    d = _dataset("dmp-crossdevice", data_root)
    return {"anonymous": _run(Anonymous(), d), "login-bridge": _run(LoginBridge(), d), "dir": d}


@pytest.fixture(scope="module")
def graph(data_root: Path) -> dict[str, dict[str, Any]]:
    d = _dataset("identity-graph", data_root)
    return {
        "hybrid": _run(Hybrid(), d),
        "cascade-guarded": _run(CascadeGuarded(), d),
        "anonymous": _run(Anonymous(), d),
    }


def _check_well_formed(run: dict[str, Any]) -> None:
    out = run["outcome"]
    ids = out.clusters["record_id"].to_pylist()
    assert len(ids) == len(set(ids)) == run["n_records"], "every record exactly once"
    assert out.pairs is not None
    left = out.pairs["record_id_l"].to_numpy()
    right = out.pairs["record_id_r"].to_numpy()
    scores = out.pairs["score"].to_numpy()
    assert len(left) > 0
    assert (left < right).all()
    assert len(set(zip(left.tolist(), right.tolist(), strict=True))) == len(left)
    assert np.isfinite(scores).all()


def test_anonymous_output_well_formed(dmp) -> None:
    _check_well_formed(dmp["anonymous"])


def test_hybrid_output_well_formed(graph) -> None:
    _check_well_formed(graph["hybrid"])


def test_anonymous_links_only_identifiers(graph, data_root: Path) -> None:
    d = _dataset("identity-graph", data_root)
    con = connect(threads=1)
    try:
        con.register("clu", graph["anonymous"]["outcome"].clusters)
        n = con.sql(
            f"""SELECT count(*) FROM clu JOIN '{d}/records.parquet' r USING (record_id)
                WHERE r.source NOT IN ('cookie', 'maid') AND clu.cluster_id <> clu.record_id"""
        ).fetchall()[0][0]
    finally:
        con.close()
    assert n == 0, "first-party records must stay singletons in the anonymous matcher"


def test_deterministic_for_a_seed(dmp) -> None:
    again = _run(Anonymous(), dmp["dir"])
    a = sorted(zip(*dmp["anonymous"]["outcome"].clusters.to_pydict().values(), strict=True))
    b = sorted(zip(*again["outcome"].clusters.to_pydict().values(), strict=True))
    assert a == b


def test_anonymous_beats_login_bridge_on_recall(dmp) -> None:
    anon, bridge = dmp["anonymous"]["metrics"], dmp["login-bridge"]["metrics"]
    # Measured on tiny seed 1: anonymous P=0.286 R=0.044 (B-cubed F1 well above the
    # bridge's), login-bridge R=0 (dmp-crossdevice has no logins or orders to bridge
    # through). Floors: recall +0.02 over the bridge, precision 0.2 (margin ~0.09).
    print(f"anonymous P={anon['precision']} R={anon['recall']}; login-bridge R={bridge['recall']}")
    assert anon["recall"] >= (bridge["recall"] or 0.0) + 0.02
    assert anon["precision"] is not None and anon["precision"] >= 0.2
    assert anon["bcubed_f1"] > bridge["bcubed_f1"]


def test_hybrid_at_least_each_pure_lens(graph) -> None:
    f1 = {k: v["metrics"]["bcubed_f1"] for k, v in graph.items()}
    print(f"B-cubed F1: {f1}")
    # Measured on tiny seed 1: hybrid 0.565, cascade-guarded 0.539, anonymous 0.106
    # (small seed 42: 0.555 / 0.546 / -). Before the cascade's group-size and cluster
    # caps were scoped to shareable keys (they used to cut every account with > 50
    # logins) these were 0.173 / 0.136 (small: 0.133 / 0.086). A 0.01 slack absorbs
    # generator changes.
    assert f1["hybrid"] >= f1["cascade-guarded"] - 0.01
    assert f1["hybrid"] >= f1["anonymous"] - 0.01


def test_em_recovers_planted_parameters() -> None:
    rng = np.random.default_rng(0)
    n, lam = 20_000, 0.3
    match = rng.random(n) < lam
    # Three features: a latent class model with only two is barely identified.
    levels = {"ips": 6, "cooc": 3, "hour": 4}
    m = {
        "ips": [0.05, 0.05, 0.1, 0.2, 0.3, 0.3],
        "cooc": [0.1, 0.2, 0.7],
        "hour": [0.1, 0.2, 0.3, 0.4],
    }
    u = {
        "ips": [0.5, 0.3, 0.1, 0.05, 0.03, 0.02],
        "cooc": [0.6, 0.3, 0.1],
        "hour": [0.4, 0.3, 0.2, 0.1],
    }
    pats = {
        f: np.where(match, rng.choice(k, n, p=m[f]), rng.choice(k, n, p=u[f]))
        for f, k in levels.items()
    }
    keys, counts = np.unique(np.stack([pats[f] for f in levels], 1), axis=0, return_counts=True)
    post, params = fellegi_sunter_em(
        {f: keys[:, i] for i, f in enumerate(levels)},
        counts,
        levels=levels,
        prior_m={f: list(np.linspace(1, 2, k)) for f, k in levels.items()},
        prior_u={f: list(np.linspace(2, 1, k)) for f, k in levels.items()},
        prior_lambda=0.5,
    )
    assert math.isclose(params["lambda"], lam, abs_tol=0.08)
    assert (post >= 0).all() and (post <= 1).all()
    assert set(FEATURES) >= set(levels)


def test_clusters_respect_the_cap(dmp) -> None:
    out = _run(Anonymous(max_cluster_size=5), dmp["dir"])
    con = connect(threads=1)
    try:
        con.register("clu", out["outcome"].clusters)
        biggest = materialise(
            con,
            con.sql("SELECT max(n) AS n FROM (SELECT count(*) AS n FROM clu GROUP BY cluster_id)"),
            step="size",
        )["n"][0].as_py()
    finally:
        con.close()
    assert biggest <= 5


def test_hybrid_passes_its_parameters_to_anonymous() -> None:
    # Hybrid builds its Anonymous from its own attributes of the same names.
    hybrid = Hybrid(threshold=0.4, k1=7, max_cluster_size=33, em_iterations=3)
    anon = hybrid._anonymous()
    assert anon.get_params() == {n: getattr(hybrid, n) for n in Anonymous.param_names()}
    assert (anon.threshold, anon.k1, anon.max_cluster_size) == (0.4, 7, 33)
