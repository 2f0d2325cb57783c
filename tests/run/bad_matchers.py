"""Deliberately broken matchers: the runner must record each failure and carry on."""

from __future__ import annotations

import os
import time
from typing import ClassVar

import pyarrow as pa

from bench.api import BaseMatcher, MatchContext, MatchResult
from bench.sql.engine import quote_ident


class _Base(BaseMatcher):
    version: ClassVar[str] = "0"

    def __init__(self) -> None:
        pass

    def _ids(self, ctx: MatchContext) -> list[int]:
        rel = ctx.con.sql(f"SELECT record_id FROM {quote_ident(ctx.records)} ORDER BY record_id")
        return [r[0] for r in rel.fetchall()]


class Raises(_Base):
    name: ClassVar[str] = "raises"

    def match(self, ctx: MatchContext) -> MatchResult:
        msg = "deliberate failure inside match"
        raise RuntimeError(msg)


class Sleeps(_Base):
    name: ClassVar[str] = "sleeps"

    def match(self, ctx: MatchContext) -> MatchResult:
        time.sleep(3600)
        raise AssertionError("unreachable")


class Hogs(_Base):
    name: ClassVar[str] = "hogs"

    def match(self, ctx: MatchContext) -> MatchResult:
        hoard = []
        for _ in range(400):  # up to ~20 GiB in 50 MiB steps; the runner kills it first
            hoard.append(bytearray(50 * 1024**2))
            time.sleep(0.01)
        raise AssertionError("unreachable")


class Omits(_Base):
    name: ClassVar[str] = "omits"

    def match(self, ctx: MatchContext) -> MatchResult:
        ids = self._ids(ctx)[1:]
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": ids}))


class Duplicates(_Base):
    name: ClassVar[str] = "duplicates"

    def match(self, ctx: MatchContext) -> MatchResult:
        ids = self._ids(ctx)
        ids = [*ids, ids[0]]
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": ids}))


class BadPairs(_Base):
    name: ClassVar[str] = "bad-pairs"

    def match(self, ctx: MatchContext) -> MatchResult:
        ids = self._ids(ctx)
        pairs = pa.table({"record_id_l": [ids[1]], "record_id_r": [ids[0]], "score": [0.9]})
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": ids}), pairs=pairs)


class Exits(_Base):
    name: ClassVar[str] = "exits"

    def match(self, ctx: MatchContext) -> MatchResult:
        import os

        os._exit(3)


class Spikes(_Base):
    name: ClassVar[str] = "spikes"

    def match(self, ctx: MatchContext) -> MatchResult:
        spike = b"x" * (900 * 2**20)  # resident for a moment, then gone
        del spike
        ids = self._ids(ctx)
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": ids}))


#: While this environment variable is set, :class:`Flaky` fails (a plugin bug "fixed" by
#: unsetting it); run processes inherit the environment of the runner.
FLAKY_ENV = "IDBENCH_TEST_FLAKY"


class Flaky(_Base):
    name: ClassVar[str] = "flaky"

    def match(self, ctx: MatchContext) -> MatchResult:
        import os

        if os.environ.get(FLAKY_ENV):
            msg = f"deliberate failure while {FLAKY_ENV} is set"
            raise RuntimeError(msg)
        ids = self._ids(ctx)
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": ids}))


class WrongColumns(_Base):
    name: ClassVar[str] = "wrong-columns"

    def match(self, ctx: MatchContext) -> MatchResult:
        ids = self._ids(ctx)
        return MatchResult(clusters=pa.table({"id": ids, "cluster": ids}))


class Segfaults(_Base):
    name: ClassVar[str] = "segfaults"

    def match(self, ctx: MatchContext) -> MatchResult:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)
        raise AssertionError("unreachable")


class Naps(_Base):
    """Slow but correct: singletons after a two-second nap (keeps a run in progress)."""

    name: ClassVar[str] = "naps"

    def match(self, ctx: MatchContext) -> MatchResult:
        time.sleep(2)
        ids = self._ids(ctx)
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": ids}))


class Peeks(_Base):
    """Tries to read the truth: through DuckDB by absolute path and by a glob relative to
    its working directory, and through the job file; scores itself with what it finds,
    else returns singletons. ``diagnostics["attempts"]`` says how each attempt ended."""

    name: ClassVar[str] = "peeks"

    def __init__(self, dataset: str = "", glob: str = "") -> None:
        self.dataset = dataset
        self.glob = glob

    def match(self, ctx: MatchContext) -> MatchResult:
        import json
        import sys
        from pathlib import Path

        import pyarrow.parquet as pq

        def from_job() -> list[tuple[int, int]]:
            job = json.loads(Path(sys.argv[1]).read_text())
            for value in job.values():
                truth = Path(str(value)) / "truth" / "records.parquet"
                if truth.is_file():
                    t = pq.read_table(truth)
                    return list(
                        zip(t["record_id"].to_pylist(), t["person_id"].to_pylist(), strict=True)
                    )
            raise LookupError(f"the job names no dataset: {sorted(job)}")

        sql = "SELECT record_id, person_id FROM read_parquet('{}')"
        tries = {
            "absolute": lambda: ctx.con.sql(
                sql.format(f"{self.dataset}/truth/records.parquet")
            ).fetchall(),
            "relative glob": lambda: ctx.con.sql(sql.format(self.glob)).fetchall(),
            "job file": from_job,
        }
        attempts, truth = {}, {}
        for what, attempt in tries.items():
            try:
                truth = truth or dict(attempt())
                attempts[what] = "read the truth"
            except Exception as exc:  # noqa: BLE001 - each attempt reports how it failed
                attempts[what] = f"{type(exc).__name__}: {exc}"
        ids = self._ids(ctx)
        clusters = [truth.get(i, -i) for i in ids]
        return MatchResult(
            clusters=pa.table({"record_id": ids, "cluster_id": clusters}),
            diagnostics={"attempts": attempts, "cwd": os.getcwd()},
        )
