"""What a run record says about where it ran: machine, packages, commit."""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["environment", "git_info"]

#: Packages whose versions change results or timings.
PACKAGES = (
    "idbench",
    "duckdb",
    "polars",
    "pyarrow",
    "numpy",
    "numba",
    "pandas",
    "splink",
    "recordlinkage",
    "phonenumbers",
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def git_info() -> dict[str, Any]:
    """Commit and dirty flag of the idbench checkout (None outside a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


@functools.cache
def environment() -> dict[str, Any]:
    """Python, machine and package versions, and the git commit."""
    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus_usable = os.cpu_count()
    try:
        import psutil

        mem_total = psutil.virtual_memory().total
    except ImportError:  # pragma: no cover - psutil is a dependency
        mem_total = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpus_usable,
        "memory_total_bytes": mem_total,
        "packages": {p: _version(p) for p in PACKAGES},
        "git": git_info(),
    }
