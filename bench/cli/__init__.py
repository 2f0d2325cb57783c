"""The ``idbench`` command line: ``main`` parses and dispatches (:mod:`bench.cli.main`).

``run`` lives in :mod:`bench.cli.run` (it loads the harness, so it is imported only when
used); :mod:`bench.cli.console` holds the consoles every command writes to.
"""

from bench.cli.main import main

__all__ = ["main"]
