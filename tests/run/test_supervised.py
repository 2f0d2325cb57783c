"""Supervised runs: the training sample, its exclusion from evaluation, and the matcher.

The harness draws training persons from the truth (bench.data.labels), gives only their
labels to a ``needs_labels`` matcher and evaluates on the other persons; the
``anonymous-supervised`` matcher learns its m, u and match share from those labels.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data.datagen import ensure_generated
from bench.data.dataset import Dataset
from bench.data.labels import TRAINING_RECORDS_FILE, training_sample
from bench.metrics.core import evaluate
from bench.metrics.evaluate import evaluate_run
from bench.run.runner import run_suite
from bench.run.suite import load_suite
from bench.sql import engine
from bench.testing import fixture_labels, fixture_records, fixture_tables, run_on
from matchers.anonymous import AnonymousSupervised, fellegi_sunter_supervised

#: generates datasets and runs suites in worker processes.
pytestmark = pytest.mark.slow


def _truth(path: Path, persons: int, per_person: int = 3) -> Path:
    rows = [(p * 1000 + k, p) for p in range(persons) for k in range(per_person)]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    table = pa.table(
        {
            "record_id": pa.array([rows[i][0] for i in order], pa.int64()),
            "person_id": pa.array([rows[i][1] for i in order], pa.int64()),
        }
    )
    pq.write_table(table, path)
    return path


def test_training_sample_draws_whole_persons_deterministically(tmp_path: Path) -> None:
    truth = _truth(tmp_path / "truth.parquet", persons=20_000)
    a = training_sample(truth, seed=7)
    b = training_sample(truth, seed=7)
    assert a.equals(b)
    persons = set(a.column("entity_id").to_pylist())
    # every record of a drawn person is labelled, and the labels are the truth
    assert a.num_rows == 3 * len(persons)
    assert all(
        rid // 1000 == p
        for rid, p in zip(*(a.column(c).to_pylist() for c in a.column_names), strict=True)
    )
    # about a fifth of the persons (binomial sd ~0.003 at 20k persons)
    assert 0.19 <= len(persons) / 20_000 <= 0.21
    other = set(training_sample(truth, seed=8).column("entity_id").to_pylist())
    assert other != persons
    assert 0.02 < len(other & persons) / len(persons) < 0.4  # independent draws overlap ~20%


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, float("nan")])
def test_training_fraction_must_be_a_proper_share(tmp_path: Path, fraction: float) -> None:
    truth = _truth(tmp_path / "truth.parquet", persons=10)
    with pytest.raises(ValueError, match="between 0 and 1"):
        training_sample(truth, seed=1, fraction=fraction)


def test_supervised_estimates_recover_planted_parameters() -> None:
    # Candidate pairs of a population with a planted model; persons drawn with
    # probability f label a true pair with probability f and a false pair with f**2.
    rng = np.random.default_rng(3)
    n, lam, f = 400_000, 0.1, 0.2
    levels = {"ips": 6, "cooc": 3}
    m = {"ips": [0.05, 0.05, 0.1, 0.2, 0.3, 0.3], "cooc": [0.1, 0.2, 0.7]}
    u = {"ips": [0.5, 0.3, 0.1, 0.05, 0.03, 0.02], "cooc": [0.6, 0.3, 0.1]}
    match = rng.random(n) < lam
    pats = {
        feat: np.where(match, rng.choice(k, n, p=m[feat]), rng.choice(k, n, p=u[feat]))
        for feat, k in levels.items()
    }
    keep = np.where(match, rng.random(n) < f, rng.random(n) < f * f)
    # one "pattern" per kept pair is enough for the estimator (counts are weights)
    patterns = {feat: p[keep] for feat, p in pats.items()}
    est = fellegi_sunter_supervised(
        patterns,
        match[keep].astype(float),
        (~match[keep]).astype(float),
        levels=levels,
        sample_fraction=f,
    )
    for feat in levels:
        np.testing.assert_allclose(est["m"][feat], m[feat], atol=0.02)
        np.testing.assert_allclose(est["u"][feat], u[feat], atol=0.02)
    # without the correction the labelled share would be ~0.1 / (0.1 + 0.9 * 0.2) = 0.36
    assert est["lambda"] == pytest.approx(lam, abs=0.01)


def test_supervised_matcher_falls_back_without_enough_labels() -> None:
    records, truth = fixture_records()
    tables = fixture_tables(records)
    none = run_on(AnonymousSupervised(), records, tables)  # an empty training sample
    assert none.diagnostics["supervised"] is False
    assert "fewer than 20" in none.diagnostics["reason"]
    few = run_on(AnonymousSupervised(), records, tables, labels=fixture_labels(truth))
    assert few.diagnostics["supervised"] is False
    assert few.diagnostics["labelled_identifiers"] == 2  # person 0's two cookies


@pytest.fixture(scope="module")
def supervised_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("supervised")
    data = ensure_generated("dmp-crossdevice", size="tiny", seed=1, root=root / "data")
    suite_file = root / "suite.toml"
    suite_file.write_text(
        f"""
name = "sup"
seed = 5
[[datasets]]
path = "{data}"
[[matchers]]
name = "anonymous-supervised"
params = {{min_labelled_pairs = 1}}
[[matchers]]
name = "exact"
"""
    )
    records = run_suite(load_suite(suite_file), results_root=root / "results")
    assert [r["status"] for r in records] == ["ok", "ok"], [r.get("error") for r in records]
    record, other = records
    raw = root / "results" / "sup" / "raw" / record["run_key"]
    return {"record": record, "other": other, "raw": raw, "data": data, "root": root}


def test_a_supervised_run_is_scored_on_persons_it_did_not_learn_from(supervised_run) -> None:
    record, raw, data = supervised_run["record"], supervised_run["raw"], supervised_run["data"]
    dataset = Dataset.open(data)
    labels = training_sample(dataset.truth_path, seed=5)
    training = pq.read_table(raw / TRAINING_RECORDS_FILE)
    assert training.column("record_id").to_pylist() == labels.column("record_id").to_pylist()
    assert record["training"]["records"] == labels.num_rows > 0
    assert record["output"]["training_records"] == labels.num_rows
    n_all = pq.read_metadata(dataset.records_path).num_rows
    assert record["person"]["n_records"] == n_all - labels.num_rows
    # the matcher saw exactly the training persons' identifiers as labelled
    con = engine.connect(threads=1)
    try:
        engine.register_parquet(con, "records", dataset.records_path)
        engine.register_arrow(con, "labels", labels)
        n_ids = engine.query_one(
            con,
            "SELECT count(*) AS n FROM records JOIN labels USING (record_id) "
            "WHERE source IN ('cookie', 'maid')",
            step="test",
        )["n"]
    finally:
        con.close()
    assert record["diagnostics"]["labelled_identifiers"] == n_ids
    assert record["diagnostics"]["supervised"] is True


def test_excluding_training_records_equals_evaluating_the_rest(supervised_run, tmp_path) -> None:
    # evaluate_run with the training file == evaluate_run on outputs that never had
    # the training records (clusters restricted, pairs touching them dropped)
    raw, dataset = supervised_run["raw"], Dataset.open(supervised_run["data"])
    rest = tmp_path / "rest"
    rest.mkdir()
    con = engine.connect(threads=1)
    try:
        engine.register_parquet(con, "t", raw / TRAINING_RECORDS_FILE)
        for name, keep in (
            ("clusters", "record_id NOT IN (SELECT record_id FROM t)"),
            (
                "pairs",
                "record_id_l NOT IN (SELECT record_id FROM t) "
                "AND record_id_r NOT IN (SELECT record_id FROM t)",
            ),
        ):
            engine.write_parquet(
                con,
                f"SELECT * FROM '{raw / (name + '.parquet')}' WHERE {keep}",
                rest / f"{name}.parquet",
            )
    finally:
        con.close()
    threshold = supervised_run["record"]["matcher"]["threshold"]
    with_file = evaluate_run(raw, dataset, threads=1, threshold=threshold)
    without = evaluate_run(rest, dataset, threads=1, threshold=threshold)
    for r in (with_file, without):
        r.pop("evaluation_timings")
    assert with_file["output"].pop("training_records") > 0
    assert without["output"].pop("training_records") is None
    assert json.dumps(with_file, sort_keys=True, default=str) == json.dumps(
        without, sort_keys=True, default=str
    )
    # and the raw directory with its training file is what --recompute reads
    copy = tmp_path / "copy"
    shutil.copytree(raw, copy)
    again = evaluate_run(copy, dataset, threads=1, threshold=threshold)
    again.pop("evaluation_timings")
    again["output"].pop("training_records")
    assert again == with_file


def test_the_report_says_a_supervised_row_is_scored_without_its_training_persons(
    supervised_run,
) -> None:
    from bench.report.build import build_report

    record = supervised_run["record"]
    build_report(supervised_run["root"] / "results" / "sup")
    text = (supervised_run["root"] / "results" / "sup" / "report.md").read_text()
    persons, records = record["training"]["persons"], record["training"]["records"]
    assert (
        f"learnt from the labels of {persons:,} persons ({records:,} records)"
        " (a 20% sample of persons" in text
    )
    assert "| anonymous-supervised (held-out) | prob | ok |" in text


def test_the_draw_does_not_depend_on_row_order(tmp_path: Path) -> None:
    truth = _truth(tmp_path / "truth.parquet", persons=2_000)
    table = pq.read_table(truth)
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    pq.write_table(shuffled, tmp_path / "shuffled.parquet", row_group_size=100)
    assert training_sample(truth, seed=3).equals(
        training_sample(tmp_path / "shuffled.parquet", seed=3)
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("null", "1 NULL record_id"),
        ("duplicate", "duplicate record_id"),
        ("unknown", "1 record_id(s) absent from the clusters"),
        ("everything", "every record of the run is a training record"),
    ],
)
def test_a_bad_training_file_is_refused(supervised_run, tmp_path, case, message) -> None:
    from bench.metrics.core import EvaluationInputError

    raw, dataset = supervised_run["raw"], Dataset.open(supervised_run["data"])
    bad = tmp_path / "raw"
    shutil.copytree(raw, bad)
    ids = pq.read_table(raw / "clusters.parquet").column("record_id").to_pylist()
    rows = {
        "null": [None],
        "duplicate": [ids[0], ids[0]],
        "unknown": [max(ids) + 1],
        "everything": ids,
    }[case]
    pq.write_table(pa.table({"record_id": pa.array(rows, pa.int64())}), bad / TRAINING_RECORDS_FILE)
    with pytest.raises(EvaluationInputError, match=re.escape(message)):
        evaluate_run(bad, dataset, threads=1)


def test_every_run_of_a_suite_with_a_supervised_matcher_is_scored_on_the_held_out_persons(
    supervised_run, tmp_path
) -> None:
    record, other = supervised_run["record"], supervised_run["other"]
    dataset = Dataset.open(supervised_run["data"])
    # the supervised run's held-out metrics are its own metrics
    assert record["heldout"]["person"] == record["person"]
    assert record["heldout"]["training_records"] == record["training"]["records"]
    # the other run: its clusters restricted to the same persons, evaluated directly
    held = other["heldout"]
    assert held["seed"] == record["seed"] == 5
    assert held["training_records"] == record["training"]["records"]
    raw = supervised_run["root"] / "results" / "sup" / "raw" / other["run_key"]
    labels = training_sample(dataset.truth_path, seed=5)
    con = engine.connect(threads=1)
    try:
        engine.register_arrow(con, "t", labels)
        engine.execute(
            con,
            f"CREATE VIEW k AS SELECT * FROM '{raw / 'clusters.parquet'}' "
            "WHERE record_id NOT IN (SELECT record_id FROM t)",
        )
        engine.execute(con, f"CREATE VIEW truth AS SELECT * FROM '{dataset.truth_path}'")
        want = evaluate(con, "k", "truth", entity="person_id")
    finally:
        con.close()
    assert held["person"] == want
    assert held["person"]["n_records"] == record["person"]["n_records"]
    assert other["person"]["n_records"] > held["person"]["n_records"]  # scored on all too
    # the report compares every matcher on those persons
    from bench.report.build import build_report

    build_report(supervised_run["root"] / "results" / "sup")
    text = (supervised_run["root"] / "results" / "sup" / "report.md").read_text()
    n = f"{held['person']['n_records']:,}"
    assert f"| exact | det | {n} |" in text


def test_recompute_adds_held_out_metrics_where_a_supervised_run_is_stored(
    supervised_run, tmp_path
) -> None:
    from bench.run.runner import recompute

    copy = tmp_path / "results"
    shutil.copytree(supervised_run["root"] / "results", copy)
    runs = copy / "sup" / "runs"
    path = runs / f"{supervised_run['other']['run_key']}.json"
    stored = json.loads(path.read_text())
    want = stored.pop("heldout")
    path.write_text(json.dumps(stored))
    from bench.report.build import build_report

    build_report(copy / "sup")
    note = "Not in that comparison yet (stored before the suite had a supervised matcher): `exact`"
    assert note in (copy / "sup" / "report.md").read_text()
    updated, problems = recompute(copy / "sup", threads=1)
    assert problems == [] and updated == 2
    assert json.loads(path.read_text())["heldout"] == want
    build_report(copy / "sup")
    assert "Not in that comparison yet" not in (copy / "sup" / "report.md").read_text()


def test_recompute_keeps_held_out_metrics_when_no_supervised_record_is_left(
    supervised_run, tmp_path
) -> None:
    # the supervised run was lost (killed before it stored a result): the other runs keep
    # the held-out metrics they were stored with
    from bench.run.runner import recompute

    copy = tmp_path / "results"
    shutil.copytree(supervised_run["root"] / "results", copy)
    runs = copy / "sup" / "runs"
    (runs / f"{supervised_run['record']['run_key']}.json").unlink()
    path = runs / f"{supervised_run['other']['run_key']}.json"
    want = json.loads(path.read_text())["heldout"]
    updated, problems = recompute(copy / "sup", threads=1)
    assert problems == [] and updated == 1
    assert json.loads(path.read_text())["heldout"] == want
