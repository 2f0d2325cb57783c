"""The conformance suite over every registered matcher (and that it can fail)."""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa
import pytest

from bench.api import LENSES, BaseMatcher, MatchContext, MatchResult
from bench.run.registry import discover
from bench.testing import check_lens, check_matcher, parametrize_with_checks


def _instances() -> list[BaseMatcher]:
    out = []
    for entry in discover().values():
        assert entry.cls is not None, f"built-in matcher {entry.name} is broken: {entry.error}"
        presets = getattr(entry.cls, "conformance_presets", None)
        out.extend(presets() if presets else [entry.cls()])
    return out


@parametrize_with_checks(_instances())
def test_registered_matchers_conform(matcher, check) -> None:
    check(matcher)


class MergesEverything(BaseMatcher):
    name: ClassVar[str] = "merges-everything"
    lens: ClassVar[str] = "deterministic"
    tags: ClassVar[frozenset[str]] = frozenset({"pii"})

    def __init__(self, *, label: str = "all") -> None:
        self.label = label
        self.cache = {}  # state set in __init__: breaks the contract

    def match(self, ctx: MatchContext) -> MatchResult:
        ctx.con.sql("CREATE TABLE scratch AS SELECT 1 AS x")  # no namespace prefix
        ids = [r[0] for r in ctx.con.sql(f"SELECT record_id FROM {ctx.records}").fetchall()]
        return MatchResult(clusters=pa.table({"record_id": ids, "cluster_id": [0] * len(ids)}))


def test_the_suite_catches_a_bad_matcher() -> None:
    outcomes = {o.check: o for o in check_matcher(MergesEverything())}
    failed = {name for name, o in outcomes.items() if o.status == "failed"}
    assert {
        "check_registered",
        "check_init_stores_only_params",
        "check_unrelated_records_not_merged",
        "check_inputs_untouched_and_connection_usable",
    } <= failed
    assert outcomes["check_identical_records_merged"].status == "passed"
    assert outcomes["check_lens"].status == "passed"
    assert "scratch" in outcomes["check_inputs_untouched_and_connection_usable"].message


class DeclaresFailure(MergesEverything):
    expected_failed_checks: ClassVar[dict[str, str]] = {
        "check_unrelated_records_not_merged": "merges by design"
    }


def test_declared_failures_are_reported_as_expected() -> None:
    outcomes = {o.check: o for o in check_matcher(DeclaresFailure())}
    assert outcomes["check_unrelated_records_not_merged"].status == "xfail"
    assert outcomes["check_unrelated_records_not_merged"].message == "merges by design"


class StringIds(BaseMatcher):
    name: ClassVar[str] = "string-ids"
    lens: ClassVar[str] = "baseline"

    def __init__(self) -> None:
        pass

    def match(self, ctx: MatchContext) -> MatchResult:
        rel = ctx.con.sql(
            f"SELECT CAST(record_id AS VARCHAR) AS record_id, 1 AS cluster_id FROM {ctx.records} "
            f"UNION ALL SELECT '0' || CAST(min(record_id) AS VARCHAR), 2 FROM {ctx.records}"
        )
        return MatchResult(clusters=rel)


class EditsInputs(BaseMatcher):
    name: ClassVar[str] = "edits-inputs"
    lens: ClassVar[str] = "baseline"

    def __init__(self) -> None:
        pass

    def match(self, ctx: MatchContext) -> MatchResult:
        ctx.con.sql("UPDATE __idbench_in_records SET given_name = 'ZZZ'")
        rel = ctx.con.sql(f"SELECT record_id, record_id AS cluster_id FROM {ctx.records}")
        return MatchResult(clusters=rel)


def test_ids_of_another_type_are_malformed_output() -> None:
    outcomes = {o.check: o for o in check_matcher(StringIds())}
    assert outcomes["check_clusters_schema"].status == "failed"
    assert "must be an integer column" in outcomes["check_clusters_schema"].message


def test_a_matcher_that_edits_a_non_key_input_column_is_caught() -> None:
    outcomes = {o.check: o for o in check_matcher(EditsInputs())}
    check = outcomes["check_inputs_untouched_and_connection_usable"]
    assert check.status == "failed"
    assert "changed its input" in check.message


class NoLens(BaseMatcher):
    """Every record alone, a sound matcher but for the lens it does not declare."""

    name: ClassVar[str] = "no-lens"

    def __init__(self) -> None:
        pass

    def match(self, ctx: MatchContext) -> MatchResult:
        rel = ctx.con.sql(f"SELECT record_id, record_id AS cluster_id FROM {ctx.records}")
        return MatchResult(clusters=rel)


class UnknownLens(NoLens):
    lens: ClassVar[str] = "fuzzy"


class DeclaresLens(NoLens):
    lens: ClassVar[str] = "baseline"


@pytest.mark.parametrize(("cls", "shown"), [(NoLens, "''"), (UnknownLens, "'fuzzy'")])
def test_a_matcher_without_a_known_lens_fails_the_lens_check(cls: type, shown: str) -> None:
    outcomes = {o.check: o for o in check_matcher(cls())}
    check = outcomes["check_lens"]
    assert check.status == "failed"
    assert f"{cls.__name__}.lens={shown}" in check.message
    for lens in LENSES:
        assert repr(lens) in check.message
    assert outcomes["check_unrelated_records_not_merged"].status == "passed"


def test_a_declared_lens_passes() -> None:
    check_lens(DeclaresLens())
