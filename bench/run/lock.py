"""One writer per results folder: a lock file naming the run that holds it.

Two ``idbench run`` writing one suite's folder would run the same runs twice and
overwrite each other's staged outputs, so a run holds ``<results>/<suite>/.lock`` while it
writes. The lock is an ``fcntl.flock`` on that file, which the kernel drops when the
holder dies, so a crashed run never blocks the next one; the file holds the holder's pid,
process start time and the time it took the lock, for the message a second run gets.
Whoever holds the lock is the only writer, so it also removes what dead runs left
behind (staging folders, job folders, temp files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.run.results import ResultsFolderError, folder_error

__all__ = ["LOCK_NAME", "results_lock"]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
#: What a run leaves in its results folder only while it runs (see :mod:`bench.run.runner`).
_LEFTOVERS = ("raw/.staging-*", ".job-*", "runs/.*.tmp")


def _holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder (empty when unreadable)."""
    try:
        return json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}


def _holder_when_written(fd: int, *, wait_s: float = 1.0) -> dict[str, Any]:
    """The holder's details, waiting a moment for a holder that has just taken the lock.

    The holder writes its pid right after taking the lock; a second run that arrives in
    between would otherwise read an empty file.
    """
    deadline = time.monotonic() + wait_s
    holder = _holder(fd)
    while not holder and time.monotonic() < deadline:
        time.sleep(0.05)
        holder = _holder(fd)
    return holder


def _why_stale(holder: dict[str, Any]) -> str:
    """Why the run named in an unlocked lock file no longer holds it."""
    pid = holder.get("pid")
    try:
        started = psutil.Process(pid).create_time() if isinstance(pid, int) else None
    except psutil.Error:
        started = None
    if started is None:
        return f"pid {pid} is not running"
    if started != holder.get("process_started"):
        return f"pid {pid} is now another process"
    return f"pid {pid} released it"


def _open_locked(root: Path, path: Path) -> int:
    """A descriptor of ``path`` holding its exclusive flock.

    Raises
    ------
    ResultsFolderError
        Another process holds the lock, or the folder cannot be written.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise folder_error(root, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_when_written(fd)
            os.close(fd)
            who = (
                f"pid {holder['pid']}, since {holder.get('since', '?')}"
                if "pid" in holder
                else "a run that is just starting"
            )
            msg = (
                f"results folder {root} is in use by another idbench run ({who}); wait "
                "for it to finish or give another results folder"
            )
            raise ResultsFolderError(msg) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        # the holder released and removed the file between our open and our flock
        os.close(fd)


def _clean_leftovers(root: Path) -> None:
    """Remove what runs that died left behind; only the lock holder may."""
    for pattern in _LEFTOVERS:
        for path in root.glob(pattern):
            log.info("removing %s, left behind by an interrupted run", path)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _take(root: Path, fd: int) -> None:
    """Write this process into the locked file (after a warning about a stale holder)
    and clear what earlier runs left behind."""
    previous = _holder(fd)
    if previous:
        log.warning(
            "taking over the lock of results folder %s from an earlier run (%s; it took "
            "the lock at %s)",
            root,
            _why_stale(previous),
            previous.get("since", "?"),
        )
    me = {
        "pid": os.getpid(),
        "process_started": psutil.Process().create_time(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        _clean_leftovers(root)
    except OSError as exc:
        raise folder_error(root, exc) from exc


@contextlib.contextmanager
def results_lock(root: Path) -> Iterator[None]:
    """Hold the lock of results folder ``root`` (created if needed) for the block.

    Released on every way out of the block, Ctrl-C included. A lock file left by a run
    that died is taken over with a warning.

    Raises
    ------
    ResultsFolderError
        Another run holds the folder (the message names its pid and since when), or the
        folder cannot be written.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise folder_error(root, exc) from exc
    path = root / LOCK_NAME
    fd = _open_locked(root, path)
    try:
        _take(root, fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still locked: a waiting run then opens a new file
        os.close(fd)
