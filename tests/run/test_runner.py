"""The runner: runs in their own processes, failures recorded, resumable, atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run.results import RunStore, load_records
from bench.run.runner import plan_suite, recompute, run_suite
from bench.run.suite import load_suite

#: every test runs suites in worker processes.
pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).parent


def _suite(tmp_path: Path, dataset: Path, matchers: str, **extra: str) -> Path:
    head = "\n".join(f"{k} = {v}" for k, v in extra.items())
    text = f"""
name = "t"
python_path = ["{TESTS_DIR}"]
{head}
[[datasets]]
path = "{dataset}"
{matchers}
"""
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_a_relative_results_folder_works(
    tmp_path: Path, fixture_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make run` stores under the relative `results/`; the run process changes its working
    # directory to its staged inputs, so every path it is given must be absolute
    monkeypatch.chdir(tmp_path)
    suite = load_suite(_suite(tmp_path, fixture_dataset, '[[matchers]]\nname = "exact"'))
    (rec,) = run_suite(suite, results_root=Path("results"))
    assert rec["status"] == "ok", rec.get("error")
    assert (tmp_path / "results" / "t" / "raw" / rec["run_key"] / "clusters.parquet").is_file()


def test_good_runs_store_records_with_metrics(tmp_path: Path, fixture_dataset: Path) -> None:
    suite = load_suite(
        _suite(
            tmp_path,
            fixture_dataset,
            '[[matchers]]\nname = "exact"\ngrid = {keys = [["email"], ["phone", "dob"]]}\n'
            '[[matchers]]\nname = "singletons"',
        )
    )
    records = run_suite(suite, results_root=tmp_path / "results")
    assert [r["status"] for r in records] == ["ok", "ok", "ok"]
    by_label = {r["matcher"]["label"]: r for r in records}
    exact = by_label["Exact(keys=['email'])"]
    # fixture: person 0 has 3 identical records (3 pairs), person 1 has 2 (1 pair); the
    # cookie records of person 0 (2 more records) carry no email, so person 0 has 5
    # records -> 10 true pairs, person 1 -> 1, person 5 (record + cookie) -> 1: 12 true.
    assert exact["person"]["tp_pairs"] == 4
    assert exact["person"]["true_pairs"] == 12
    assert exact["person"]["precision"] == 1.0
    assert exact["person"]["recall"] == pytest.approx(4 / 12)
    single = by_label["Singletons()"]
    assert single["person"]["precision"] is None  # no predicted pairs: undefined, not 0 or 1
    assert single["person"]["recall"] == 0.0
    for rec in records:
        assert set(rec["timings"]) >= {"load", "fit", "match", "validate", "evaluate", "wall"}
        assert rec["peak_rss_bytes"] > 10 * 1024**2
        assert rec["environment"]["packages"]["duckdb"]
        # the machine's load at the start and end of the run, beside its timings
        for when in ("start", "end"):
            assert len(rec["load_average"][when]) == 3
            assert all(x >= 0 for x in rec["load_average"][when])
        assert rec["dataset"]["fingerprint"].startswith("sha256:")
        store = RunStore(tmp_path / "results" / "t")
        assert (store.raw_dir(rec["run_key"]) / "clusters.parquet").is_file()
    # household level: persons 0 and 1 share a household, so more true pairs
    assert exact["household"]["true_pairs"] > exact["person"]["true_pairs"]


BAD = {
    "raises": ("error", "deliberate failure inside match"),
    "sleeps": ("timeout", "timeout"),
    "hogs": ("error", "memory limit exceeded"),
    "omits": ("error", "clusters omit 1 input record"),
    "duplicates": ("error", "more than once"),
    "bad-pairs": ("error", "record_id_l >= record_id_r"),
    "exits": ("error", "exit code 3"),
}
CLASSES = {
    "raises": "Raises",
    "sleeps": "Sleeps",
    "hogs": "Hogs",
    "omits": "Omits",
    "duplicates": "Duplicates",
    "bad-pairs": "BadPairs",
    "exits": "Exits",
}


def test_bad_matchers_are_recorded_and_the_suite_goes_on(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    blocks = [f'[[matchers]]\nname = "bad_matchers:{c}"' for c in CLASSES.values()]
    blocks.insert(3, '[[matchers]]\nname = "exact"')  # a good run in the middle
    suite = load_suite(
        _suite(tmp_path, fixture_dataset, "\n".join(blocks), timeout_s="8", memory_limit='"700MB"')
    )
    records = run_suite(suite, results_root=tmp_path / "results")
    assert len(records) == len(CLASSES) + 1
    by_name = {r["matcher"]["name"].split(":")[-1]: r for r in records}
    assert by_name["exact"]["status"] == "ok"
    for short, cls in CLASSES.items():
        status, reason = BAD[short]
        rec = by_name[cls]
        assert rec["status"] == status, (cls, rec["error"])
        assert reason in rec["error"], (cls, rec["error"])
        assert not RunStore(tmp_path / "results" / "t").raw_dir(rec["run_key"]).exists()
    assert by_name["Sleeps"]["timings"]["wall"] < 30
    # every record on disk parses and says what it is
    stored = load_records(tmp_path / "results")
    assert {r["status"] for r in stored} == {"ok", "error", "timeout"}


def test_stored_runs_are_skipped_unless_forced(tmp_path: Path, fixture_dataset: Path) -> None:
    suite = load_suite(_suite(tmp_path, fixture_dataset, '[[matchers]]\nname = "singletons"'))
    first = run_suite(suite, results_root=tmp_path / "r")
    skipped = []
    again = run_suite(
        suite, results_root=tmp_path / "r", on_done=lambda run, rec, was: skipped.append(was)
    )
    assert skipped == [True]
    assert again[0]["run_id"] == first[0]["run_id"]
    forced = run_suite(suite, results_root=tmp_path / "r", force=True)
    assert forced[0]["run_id"] != first[0]["run_id"]
    assert forced[0]["run_key"] == first[0]["run_key"]
    raw = RunStore(tmp_path / "r" / "t").raw_dir(forced[0]["run_key"])
    assert (raw / "clusters.parquet").is_file()
    assert not list(raw.parent.glob(".previous-*"))


FLAKY_ENV = "IDBENCH_TEST_FLAKY"  # bad_matchers.Flaky fails while it is set
FLAKY_SUITE = (
    '[[matchers]]\nname = "singletons"\n[[matchers]]\nname = "exact"\n'
    '[[matchers]]\nname = "bad_matchers:Flaky"'
)


def test_retry_failed_reruns_only_failed_runs(
    tmp_path: Path, fixture_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(_suite(tmp_path, fixture_dataset, FLAKY_SUITE))
    monkeypatch.setenv(FLAKY_ENV, "1")
    first = run_suite(suite, results_root=tmp_path / "r")
    assert [r["status"] for r in first] == ["ok", "ok", "error"]
    store = RunStore(tmp_path / "r" / "t")
    # a timed-out run is retried too (made by hand: a real timeout costs seconds)
    timed_out = {**store.read(first[1]["run_key"]), "status": "timeout", "error": "killed"}
    store.store(timed_out)
    # without the flag, every stored run is skipped, failed or not
    skipped: list[bool] = []
    again = run_suite(suite, results_root=tmp_path / "r", on_done=lambda r, c, s: skipped.append(s))
    assert skipped == [True, True, True]
    assert [r["status"] for r in again] == ["ok", "timeout", "error"]
    # the plugin is fixed: only the error and the timeout run again, the ok run is kept
    monkeypatch.delenv(FLAKY_ENV)
    skipped.clear()
    retried = run_suite(
        suite,
        results_root=tmp_path / "r",
        retry_failed=True,
        on_done=lambda r, c, s: skipped.append(s),
    )
    assert skipped == [True, False, False]
    assert [r["status"] for r in retried] == ["ok", "ok", "ok"]
    assert retried[0]["run_id"] == first[0]["run_id"]
    assert [r["run_key"] for r in retried] == [r["run_key"] for r in first]
    assert all(r["run_id"] != f["run_id"] for r, f in zip(retried[1:], first[1:], strict=True))
    assert all((store.raw_dir(r["run_key"]) / "clusters.parquet").is_file() for r in retried)
    assert len(list(store.runs_dir.glob("*.json"))) == 3
    # nothing failed any more: a second retry runs nothing
    skipped.clear()
    run_suite(
        suite,
        results_root=tmp_path / "r",
        retry_failed=True,
        on_done=lambda r, c, s: skipped.append(s),
    )
    assert skipped == [True, True, True]


def test_a_forced_rerun_that_fails_drops_the_old_outputs_and_keeps_the_old_log(
    tmp_path: Path, fixture_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(
        _suite(tmp_path, fixture_dataset, '[[matchers]]\nname = "bad_matchers:Flaky"')
    )
    (ok,) = run_suite(suite, results_root=tmp_path / "r")
    store = RunStore(tmp_path / "r" / "t")
    raw = store.raw_dir(ok["run_key"])
    assert ok["status"] == "ok" and (raw / "clusters.parquet").is_file()
    logs = tmp_path / "r" / "t" / "logs"
    first_log = (logs / f"{ok['run_key']}.log").read_text()
    monkeypatch.setenv(FLAKY_ENV, "1")
    (failed,) = run_suite(suite, results_root=tmp_path / "r", force=True)
    assert failed["status"] == "error"
    # the error record has no raw outputs, and no stale ones of the earlier run sit beside it
    assert not raw.exists() and not list(raw.parent.glob(".previous-*"))
    assert (logs / f"{ok['run_key']}.previous.log").read_text() == first_log
    # a recompute of an ok run keeps its outputs (only fresh executions replace them)
    monkeypatch.delenv(FLAKY_ENV)
    (again,) = run_suite(suite, results_root=tmp_path / "r", retry_failed=True)
    store.update(store.read(again["run_key"]))
    assert (store.raw_dir(again["run_key"]) / "clusters.parquet").is_file()


def test_an_interrupted_retry_keeps_the_stored_record(
    tmp_path: Path, fixture_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from types import SimpleNamespace

    from bench.run import supervisor

    suite = load_suite(
        _suite(tmp_path, fixture_dataset, '[[matchers]]\nname = "bad_matchers:Flaky"')
    )
    monkeypatch.setenv(FLAKY_ENV, "1")
    (failed,) = run_suite(suite, results_root=tmp_path / "r")
    assert failed["status"] == "error"
    store = RunStore(tmp_path / "r" / "t")
    before = store.record_path(failed["run_key"]).read_bytes()

    def interrupt(seconds: float) -> None:  # Ctrl-C while the retried run is running
        raise KeyboardInterrupt

    monkeypatch.setattr(
        supervisor, "time", SimpleNamespace(perf_counter=time.perf_counter, sleep=interrupt)
    )
    monkeypatch.delenv(FLAKY_ENV)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, results_root=tmp_path / "r", retry_failed=True)
    assert store.record_path(failed["run_key"]).read_bytes() == before
    assert not list((tmp_path / "r" / "t" / "raw").glob(".staging-*"))
    assert not store.raw_dir(failed["run_key"]).exists()


def test_cli_counts_failed_runs_and_strict_exits_non_zero(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    import os
    import subprocess
    import sys

    suite = _suite(tmp_path, fixture_dataset, FLAKY_SUITE)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench", "run", str(suite), "--results", str(results)]
    cmd.append("--no-report")
    broken = {**os.environ, FLAKY_ENV: "1"}

    def idbench(*extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*cmd, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    done = idbench(env=broken)
    assert done.returncode == 0, done.stderr  # failed runs are recorded results
    assert "1 of 3 run(s) failed" in done.stderr
    assert "--retry-failed" in done.stderr
    strict = idbench("--strict", env=broken)  # nothing re-runs; the stored failure counts
    assert strict.returncode == 1, strict.stderr
    assert "3 of 3 run(s) already stored" in strict.stdout
    fixed_env = {k: v for k, v in os.environ.items() if k != FLAKY_ENV}  # the plugin is fixed
    fixed = idbench("--retry-failed", "--strict", env=fixed_env)
    assert fixed.returncode == 0, fixed.stderr
    assert "retrying 1 stored run(s) that failed" in fixed.stdout
    assert "run(s) failed" not in fixed.stderr
    assert sorted(r["status"] for r in load_records(results)) == ["ok", "ok", "ok"]
    both = idbench("--force", "--retry-failed")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_run_keys_are_deterministic_and_distinct(tmp_path: Path, fixture_dataset: Path) -> None:
    suite = load_suite(
        _suite(
            tmp_path,
            fixture_dataset,
            '[[matchers]]\nname = "exact"\ngrid = {keys = [["email"], ["phone"]]}',
            repeats="2",
        )
    )
    a = [r.key for r in plan_suite(suite)]
    b = [r.key for r in plan_suite(suite)]
    assert a == b
    assert len(set(a)) == 4


def test_recompute_rederives_metrics_from_raw_outputs(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = load_suite(_suite(tmp_path, fixture_dataset, '[[matchers]]\nname = "exact"'))
    (rec,) = run_suite(suite, results_root=tmp_path / "r")
    path = RunStore(tmp_path / "r" / "t").record_path(rec["run_key"])
    tampered = json.loads(path.read_text())
    tampered["person"]["f1"] = -1.0
    # a record stored before matchers declared their lens gets the registered one
    assert rec["matcher"]["lens"] == "deterministic"
    del tampered["matcher"]["lens"]
    path.write_text(json.dumps(tampered))
    n, problems = recompute(tmp_path / "r")
    assert (n, problems) == (1, [])
    again = json.loads(path.read_text())
    assert again["person"]["f1"] == rec["person"]["f1"]
    assert again["matcher"]["lens"] == "deterministic"


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(tmp_path: Path, fixture_dataset: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    blocks = '[[matchers]]\nname = "singletons"\n[[matchers]]\nname = "bad_matchers:Sleeps"\n'
    blocks += '[[matchers]]\nname = "exact"'
    suite = _suite(tmp_path, fixture_dataset, blocks, timeout_s="120")
    results = tmp_path / "results"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "run",
        str(suite),
        "--results",
        str(results),
        "--no-report",
    ]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    runs = results / "t" / "runs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(runs.glob("*.json")):
        time.sleep(0.2)
    time.sleep(2)  # now inside the sleeping run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    stored = load_records(results)
    assert [r["matcher"]["name"] for r in stored] == ["singletons"]
    assert not list((results / "t" / "raw").glob(".staging-*"))
    # no orphaned run process survives the parent (job files live under the results root)
    out = subprocess.run(["pgrep", "-af", "bench.run.worker"], capture_output=True, text=True)
    assert str(results) not in out.stdout
    # re-run with a short timeout: the stored run is skipped, the rest complete
    suite.write_text(suite.read_text().replace("timeout_s = 120", "timeout_s = 3"))
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "1 of 3 run(s) already stored" in done.stdout
    statuses = sorted(r["status"] for r in load_records(results))
    assert statuses == ["ok", "ok", "timeout"]


def test_a_runs_peak_memory_is_its_own_not_its_parents() -> None:
    import subprocess
    import sys

    ballast = b"\x01" * (600 * 2**20)  # resident; the parent's high-water mark must not leak in
    code = "import bench.run.worker as w; print(w.peak_rss_bytes())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 10 * 2**20 < int(out.stdout) < 400 * 2**20
    del ballast


def test_a_short_memory_spike_over_the_limit_is_still_an_error(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = load_suite(
        _suite(
            tmp_path,
            fixture_dataset,
            '[[matchers]]\nname = "bad_matchers:Spikes"',
            memory_limit='"600MB"',
        )
    )
    (rec,) = run_suite(suite, results_root=tmp_path / "r")
    assert rec["status"] == "error"
    assert "memory limit exceeded" in rec["error"]
    assert rec["peak_rss_bytes"] > 600 * 2**20
