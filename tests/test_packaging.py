"""The installed distribution exposes exactly `bench` and `matchers`, not `datasets`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_install_exposes_bench_and_matchers_but_not_datasets(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u, bench.cli, bench.run.worker, matchers.baseline;"
        "assert u.find_spec('datasets') is None, 'datasets is importable'"
    )
    # Run outside the checkout so the current directory cannot supply the packages.
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr


def test_python_m_bench_shows_help(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "idbench" in out.stdout
    for command in ("list", "check", "run"):
        assert command in out.stdout
