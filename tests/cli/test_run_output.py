"""What ``idbench run`` and ``idbench check`` print: plain progress in logs, every file
written, one label per matcher configuration, and ``--params`` errors that say what to
type."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.run import results_table
from bench.report.records import Results


def _idbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``idbench ARGS`` with stdout a pipe (not a terminal), as in ``make run > log``."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "300", "PATH": ""},
    )


@pytest.mark.slow  # runs two matchers and builds the report
def test_run_in_a_log_prints_a_line_per_run_and_every_file(
    tmp_path: Path, fixture_dataset: Path
) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'name = "t"\n[[datasets]]\npath = "{fixture_dataset}"\n'
        '[[matchers]]\nname = "exact"\ngrid = {keys = [["email"], ["phone"]]}\n'
    )
    done = _idbench("run", str(suite), "--results", "res", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # one plain, time-stamped line per run started and finished; no live display
    assert re.search(r"^\[0:00:\d\d\] start 1/2 exact keys=email on \S+ #0$", out, re.M), out
    assert re.search(r"^\[0:00:\d\d\] done  2/2 exact keys=phone on \S+ #0: ok in ", out, re.M)
    assert "\x1b[" not in out  # no terminal control sequences in a log
    assert "records stored under res/t/runs\n" in out
    assert (
        "report written: res/t/report.md, res/t/report.html, res/t/figures, res/t/summary.json"
    ) in out
    # the console names each configuration as the report does
    report = (tmp_path / "res" / "t" / "report.md").read_text(encoding="utf-8")
    for label in ("exact keys=email", "exact keys=phone"):
        assert f"│ {label}" in out and f"| {label} |" in report
    assert "keys=['email']" not in out + report


def test_console_table_uses_the_report_labels() -> None:
    recs = [
        {
            "status": "ok",
            "dataset": {"name": "d"},
            "matcher": {"name": "exact", "params": {"keys": keys}, "label": f"Exact({keys})"},
            "person": {},
        }
        for keys in (["email"], ["email", "phone"])
    ]
    shown = list(results_table(recs).columns[1].cells)
    assert shown == [Results(recs).label(r) for r in recs]
    assert shown == ["exact keys=email", "exact keys=email+phone"]


def test_check_params_errors_name_the_option_and_its_syntax(tmp_path: Path) -> None:
    done = _idbench("check", "exact", "--params", "{keys: [phone]}", cwd=tmp_path)
    assert done.returncode == 2
    err = " ".join(done.stderr.split())
    assert "--params must be a JSON object of constructor parameters" in err
    assert """--params '{"keys": ["phone"]}'""" in err
    assert "'{keys: [phone]}' is not JSON" in err
    listed = _idbench("check", "exact", "--params", '["phone"]', cwd=tmp_path)
    assert listed.returncode == 2 and "got list" in listed.stderr


@pytest.mark.slow  # imports recordlinkage
def test_recordlinkage_is_skipped_with_its_reason_on_anonymous_records() -> None:
    import duckdb

    from bench.api import MatchContext, UnsupportedInput
    from matchers.recordlinkage_matcher import RecordLinkageMatcher

    con = duckdb.connect()
    # the personal columns exist but are empty, as on a device graph's cookie records
    con.sql(
        "CREATE VIEW recs AS SELECT range AS record_id, 'cookie' AS source, "
        "NULL::VARCHAR AS email, NULL::VARCHAR AS given_name, 'c' || range AS cookie_id "
        "FROM range(10)"
    )
    with pytest.raises(UnsupportedInput, match="no value in any column it compares"):
        RecordLinkageMatcher().match(MatchContext(con=con, records="recs"))
    # a compared column is filled, but no blocking pass can use it
    con.sql(
        "CREATE VIEW regions AS SELECT range AS record_id, 'crm' AS source, "
        "'US' AS region FROM range(10)"
    )
    with pytest.raises(UnsupportedInput, match="no blocking pass applies"):
        RecordLinkageMatcher().match(MatchContext(con=con, records="regions"))
