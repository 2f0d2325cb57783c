"""One run process under watch: start the worker, enforce the limits, read its result.

The worker (``python -m bench.run.worker JOB.json``) starts in its own session so that
Ctrl-C reaches the parent only. The parent polls the resident memory of the worker's
whole process tree and its wall time, and kills the process group past the suite's
``timeout_s`` or ``memory_limit``; a peak that fell between two polls (the worker
reports its own) still fails an ``ok`` run. An interrupted watch kills the group and
removes the staged raw outputs, so nothing half-written is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.run.suite import Suite

__all__ = ["ProcessOutcome", "run_process"]

POLL_S = 0.05


@dataclass
class ProcessOutcome:
    """How a run process ended, as the parent saw it."""

    status: str
    error: str | None
    #: Peak resident memory in bytes of the run's process tree.
    peak: int
    started: datetime
    wall: float
    #: What the worker wrote (metrics, timings, matcher facts) without ``status``,
    #: ``error`` and its own peak; empty when it wrote nothing.
    result: dict[str, Any]


def _tree_rss(proc: psutil.Process) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def _kill_group(popen: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def _tail(path: Path, n: int = 8) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / 1024**2:.0f} MiB"


def _watch(
    popen: subprocess.Popen, proc: psutil.Process, suite: Suite, t0: float
) -> tuple[str | None, str | None, int]:
    """Poll the run process until it ends; kill it past the suite's time or memory limit.

    Returns ``(status, error, peak)``; status and error are ``None`` unless it was killed.
    """
    status, error, peak = None, None, 0
    while popen.poll() is None:
        peak = max(peak, _tree_rss(proc))
        elapsed = time.perf_counter() - t0
        if elapsed > suite.timeout_s:
            _kill_group(popen)
            status = "timeout"
            error = f"killed after the {suite.timeout_s:g} s timeout"
        elif peak > suite.memory_limit_bytes:
            _kill_group(popen)
            status = "error"
            error = (
                f"memory limit exceeded: resident memory reached {_mib(peak)} > limit "
                f"{_mib(suite.memory_limit_bytes)}; killed"
            )
        time.sleep(POLL_S)
    return status, error, peak


def _exit_cause(returncode: int | None) -> str:
    """``"with exit code 3"``, or ``"from signal SIGSEGV"`` for a process a signal ended."""
    if returncode is not None and returncode < 0:
        try:
            return f"from signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"from signal {-returncode}"
    return f"with exit code {returncode}"


def _read_result(
    result_path: Path, returncode: int | None, log_path: Path
) -> tuple[str, str | None, dict[str, Any]]:
    """``(status, error, result)`` from the result file of a process that was not killed."""
    if not result_path.is_file():
        error = (
            f"the run process died {_exit_cause(returncode)} "
            f"without a result; last output:\n{_tail(log_path)}"
        )
        return "error", error, {}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    return result.pop("status"), result.pop("error"), result


def _enforce_memory_limit(outcome: ProcessOutcome, suite: Suite) -> None:
    """Fold in the worker's own peak; an ``ok`` run past the limit becomes an error."""
    outcome.peak = max(outcome.peak, outcome.result.pop("peak_rss_self_bytes", 0))
    if outcome.status == "ok" and outcome.peak > suite.memory_limit_bytes:
        # the peak fell between two polls: the limit still holds
        outcome.status = "error"
        outcome.error = (
            f"memory limit exceeded: peak resident memory {_mib(outcome.peak)} > limit "
            f"{_mib(suite.memory_limit_bytes)}"
        )


def run_process(
    job: dict[str, Any], job_path: Path, log_path: Path, suite: Suite
) -> ProcessOutcome:
    """Run the worker on ``job`` under the suite's limits and return how it ended.

    Parameters
    ----------
    job
        The job the worker reads (see :mod:`bench.run.worker`); its ``staging_dir`` is
        removed if the watch is interrupted, its ``result_path`` read afterwards.
    job_path
        Where to write the job.
    log_path
        Receives the worker's output.
    suite
        Gives the limits: ``timeout_s`` and ``memory_limit_bytes``.
    """
    job_path.write_text(json.dumps(job), encoding="utf-8")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log_fh:
        popen = subprocess.Popen(
            [sys.executable, "-m", "bench.run.worker", str(job_path)],
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the parent only; it kills the group
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    [*job["python_path"], *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
            },
        )
        proc = psutil.Process(popen.pid)
        try:
            status, error, peak = _watch(popen, proc, suite, t0)
        except BaseException:
            _kill_group(popen)
            shutil.rmtree(job["staging_dir"], ignore_errors=True)
            raise
    wall = time.perf_counter() - t0
    result: dict[str, Any] = {}
    if status is None:
        status, error, result = _read_result(Path(job["result_path"]), popen.returncode, log_path)
    outcome = ProcessOutcome(status, error, peak, started, wall, result)
    _enforce_memory_limit(outcome, suite)
    return outcome
