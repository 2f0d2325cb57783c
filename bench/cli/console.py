"""Where the ``idbench`` commands write: the console, its error stream, status colours."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["STATUS_STYLE", "console", "err"]

# Wide enough for the results table when output goes to a file or a CI log.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

#: Rich style of each run (and registry entry) status.
STATUS_STYLE = {
    "ok": "green",
    "error": "red",
    "timeout": "yellow",
    "skipped": "dim",
    "broken": "red",
}
