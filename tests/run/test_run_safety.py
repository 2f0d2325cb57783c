"""Run safety: hostile limits, crashing matchers, corrupt records, shared results folders."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.run.lock import LOCK_NAME, results_lock
from bench.run.results import ResultsFolderError, RunStore
from bench.run.runner import run_suite
from bench.run.suite import Suite, load_suite

#: runs suites in worker processes, some two at once.
pytestmark = pytest.mark.slow

TESTS_DIR = Path(__file__).parent


def _load(tmp_path: Path, dataset: Path, *matchers: str, timeout_s: float = 60) -> Suite:
    """A suite named ``t`` running ``matchers`` (registered names or module:Class)."""
    blocks = "".join(f'[[matchers]]\nname = "{m}"\n' for m in matchers)
    path = tmp_path / "suite.toml"
    path.write_text(
        f'name = "t"\npython_path = ["{TESTS_DIR}"]\ntimeout_s = {timeout_s}\n'
        f'[[datasets]]\npath = "{dataset}"\n{blocks}'
    )
    return load_suite(path)


def _strict_json(path: Path) -> dict:
    """Parse as strict JSON: NaN and Infinity are errors."""

    def refuse(token: str) -> None:
        raise ValueError(f"{path}: {token} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_crashes_and_malformed_outputs_say_what_and_who(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = _load(tmp_path, fixture_dataset, "bad_matchers:Segfaults", "bad_matchers:WrongColumns")
    segv, wrong = run_suite(suite, results_root=tmp_path / "r")
    assert segv["status"] == "error"
    assert "died from signal SIGSEGV without a result" in segv["error"]
    assert "exit code -11" not in segv["error"]
    assert wrong["status"] == "error"
    assert wrong["error"].startswith(
        "matcher 'wrong-columns' (bad_matchers:WrongColumns) returned malformed output: "
        "clusters lack column(s) record_id, cluster_id"
    )


def test_records_are_strict_json_with_the_users_permissions(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = _load(tmp_path, fixture_dataset, "singletons")
    old = os.umask(0o022)
    try:
        (rec,) = run_suite(suite, results_root=tmp_path / "r")
    finally:
        os.umask(old)
    store = RunStore(tmp_path / "r" / "t")
    path = store.record_path(rec["run_key"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert _strict_json(path)["limits"]["timeout_s"] == 60

    # a non-finite value anywhere in a record is stored as null, never as NaN
    rec = {**rec, "person": {**rec["person"], "f1": float("nan"), "x": [float("-inf")]}}
    old = os.umask(0o077)
    try:
        store.update(rec)
    finally:
        os.umask(old)
    stored = _strict_json(path)
    assert stored["person"]["f1"] is None
    assert stored["person"]["x"] == [None]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_corrupt_record_is_named_moved_aside_and_run_again(
    tmp_path: Path, fixture_dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    suite = _load(tmp_path, fixture_dataset, "singletons")
    (first,) = run_suite(suite, results_root=tmp_path / "r")
    store = RunStore(tmp_path / "r" / "t")
    path = store.record_path(first["run_key"])
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # truncated, e.g. by a full disk

    with pytest.raises(ValueError, match=f"run record {path} is corrupt: "):
        store.read(first["run_key"])
    was_stored = []
    with caplog.at_level(logging.WARNING, logger="bench.run.results"):
        (again,) = run_suite(
            suite,
            results_root=tmp_path / "r",
            on_done=lambda run, rec, was: was_stored.append(was),
        )
    assert was_stored == [False]
    assert again["status"] == "ok"
    assert again["run_id"] != first["run_id"]
    aside = path.with_name(path.name + ".corrupt")
    assert aside.read_text() == text[: len(text) // 2]
    assert str(path) in caplog.text
    assert str(aside) in caplog.text
    assert "will be run again" in caplog.text
    assert _strict_json(path)["run_id"] == again["run_id"]


def _idbench_run(suite: Suite, results: Path) -> subprocess.Popen:
    assert suite.source is not None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            str(suite.source),
            "--results",
            str(results),
            "--no-report",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )


def test_a_second_run_on_one_results_folder_is_refused(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = _load(tmp_path, fixture_dataset, "bad_matchers:Naps", "singletons")
    results = tmp_path / "r"
    first, second = _idbench_run(suite, results), _idbench_run(suite, results)
    outs = [(p.wait(timeout=120), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in outs)
    assert codes == [0, 2], outs
    stderr = next(err for code, _, err in outs if code == 2)
    folder = results / "t"
    winner = first if outs[0][0] == 0 else second
    message = " ".join(stderr.split())  # the console may wrap long lines
    assert f"results folder {folder} is in use by another idbench run" in message
    assert f"(pid {winner.pid}, since 20" in message
    assert "Traceback" not in stderr
    # the winner stored both runs, with raw outputs, and left nothing behind
    store = RunStore(folder)
    records = store.records()
    assert [r["status"] for r in records] == ["ok", "ok"]
    for rec in records:
        assert (store.raw_dir(rec["run_key"]) / "clusters.parquet").is_file()
    assert sorted(p.name for p in folder.iterdir()) == ["logs", "raw", "runs"]
    assert not list(folder.glob("raw/.*"))


def test_concurrent_runs_never_store_a_record_without_its_outputs(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = _load(tmp_path, fixture_dataset, "singletons", "exact")
    store = RunStore(tmp_path / "r" / "t")

    def run() -> str:
        try:
            run_suite(suite, results_root=tmp_path / "r", force=True)
        except ResultsFolderError as exc:
            assert "is in use by another idbench run" in str(exc)
            return "refused"
        return "ran"

    outcomes = []
    for _ in range(5):
        with ThreadPoolExecutor(2) as pool:
            outcomes += list(pool.map(lambda _: run(), range(2)))
        records = store.records()
        assert len(records) == 2
        for rec in records:
            assert rec["status"] == "ok", rec["error"]
            assert (store.raw_dir(rec["run_key"]) / "clusters.parquet").is_file()
        assert not list(store.root.glob("raw/.*"))
        assert not (store.root / LOCK_NAME).exists()
    assert "ran" in outcomes


def test_a_lock_left_by_a_dead_run_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "t"
    (root / "raw" / ".staging-abc-1").mkdir(parents=True)
    (root / ".job-xyz").mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for holder, why in [
        ({"pid": dead.pid, "process_started": 1.0, "since": "then"}, "is not running"),
        ({"pid": os.getppid(), "process_started": 1.0, "since": "then"}, "is now another"),
    ]:
        (root / LOCK_NAME).write_text(json.dumps(holder))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="bench.run.lock"), results_lock(root):
            mine = json.loads((root / LOCK_NAME).read_text())
            assert mine["pid"] == os.getpid()
        assert f"taking over the lock of results folder {root}" in caplog.text
        assert f"pid {holder['pid']} {why}" in caplog.text
        assert not (root / LOCK_NAME).exists()
    assert sorted(p.name for p in root.rglob("*")) == ["raw"]


def test_the_lock_is_released_on_ctrl_c(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), results_lock(tmp_path):
        busy = pytest.raises(ResultsFolderError, match=r"in use by another idbench run \(pid ")
        with busy, results_lock(tmp_path):
            pass
        raise KeyboardInterrupt
    with results_lock(tmp_path):
        pass


def _leftovers(folder: Path) -> list[str]:
    """Hidden files and folders (staging, temp, job, lock) anywhere under ``folder``."""
    return sorted(str(p) for p in folder.rglob(".*"))


def test_a_full_disk_is_a_message_and_leaves_nothing_half_written(
    tmp_path: Path,
    fixture_dataset: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import bench.run.results
    from bench.cli import main

    suite = _load(tmp_path, fixture_dataset, "singletons")
    (first,) = run_suite(suite, results_root=tmp_path / "r")
    store = RunStore(tmp_path / "r" / "t")
    before = store.record_path(first["run_key"]).read_text()

    def full(path: Path, data: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(bench.run.results, "write_json_atomic", full)
    with pytest.raises(ResultsFolderError) as info:
        run_suite(suite, results_root=tmp_path / "r", force=True)
    assert str(info.value).startswith(
        f"cannot write to the results folder {store.root}: No space left on device ("
    )
    # the stored run is intact: its record and its raw outputs
    assert store.record_path(first["run_key"]).read_text() == before
    assert (store.raw_dir(first["run_key"]) / "clusters.parquet").is_file()
    assert _leftovers(store.root) == []

    code = main(["run", str(suite.source), "--results", str(tmp_path / "r"), "--force"])
    stderr = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"error: cannot write to the results folder {store.root}: No space left" in stderr
    assert "Traceback" not in stderr
    assert _leftovers(store.root) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_results_folder_is_a_message(tmp_path: Path, fixture_dataset: Path) -> None:
    suite = _load(tmp_path, fixture_dataset, "singletons")
    folder = tmp_path / "r" / "t"
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    try:
        with pytest.raises(ResultsFolderError) as info:
            run_suite(suite, results_root=tmp_path / "r")
    finally:
        folder.chmod(0o755)
    assert str(info.value).startswith(
        f"cannot write to the results folder {folder}: Permission denied ("
    )
    assert list(folder.iterdir()) == []


def test_a_read_only_file_system_is_a_message(
    tmp_path: Path, fixture_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _load(tmp_path, fixture_dataset, "singletons")
    folder = tmp_path / "r" / "t"
    folder.mkdir(parents=True)
    real_open = os.open

    def read_only(path: str | Path, flags: int, *args: int, **kwargs: int) -> int:
        if Path(path).is_relative_to(folder) and flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ResultsFolderError) as info:
        run_suite(suite, results_root=tmp_path / "r")
    assert str(info.value) == (
        f"cannot write to the results folder {folder}: Read-only file system ({folder}/.lock)"
    )
    assert list(folder.iterdir()) == []


def test_the_matcher_cannot_reach_the_truth(tmp_path: Path, fixture_dataset: Path) -> None:
    suite = _load(tmp_path, fixture_dataset, "singletons")
    # from the run's working directory (<results>/t/.job-*/inputs) up to the common
    # parent of the results and the dataset, then down to any truth file
    common = Path(os.path.commonpath([tmp_path, fixture_dataset]))
    ups = len((tmp_path / "r" / "t" / ".job-x" / "inputs").relative_to(common).parts)
    glob = "../" * ups + "**/truth/records.parquet"
    text = suite.source.read_text() + (
        f'[[matchers]]\nname = "bad_matchers:Peeks"\n'
        f'params = {{dataset = "{fixture_dataset}", glob = "{glob}"}}\n'
    )
    suite.source.write_text(text)
    single, peeks = run_suite(load_suite(suite.source), results_root=tmp_path / "r")
    assert peeks["status"] == "ok", peeks["error"]
    attempts = peeks["diagnostics"]["attempts"]
    assert attempts["absolute"].startswith("PermissionException: Permission Error")
    assert attempts["relative glob"].startswith("PermissionException: Permission Error")
    assert attempts["job file"].startswith("LookupError: the job names no dataset")
    assert peeks["diagnostics"]["cwd"].endswith("/inputs")
    assert peeks["person"] == single["person"]
    assert peeks["person"]["recall"] == 0.0
