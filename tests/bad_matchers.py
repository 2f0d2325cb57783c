"""Deliberately broken matchers: the runner must record each failure and carry on."""

from __future__ import annotations

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
