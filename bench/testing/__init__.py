"""The conformance suite: checks every matcher must pass, shipped for plugin authors.

From pytest (in a plugin's own CI)::

    from bench.testing import parametrize_with_checks
    from my_plugin import MyMatcher

    @parametrize_with_checks([MyMatcher(), MyMatcher(threshold=0.9)])
    def test_conformance(matcher, check):
        check(matcher)

From the command line: ``idbench check NAME``.

Known failures are declared on the matcher class, never skipped silently::

    class MyMatcher(BaseMatcher):
        expected_failed_checks = {"check_row_order_invariance": "ties broken by input order"}

The suite is three modules: :mod:`bench.testing.fixtures` holds the fixture data (a
few hand-made records with a known truth), :mod:`bench.testing.checks` the checks and
:func:`run_on`, which runs a matcher in-process the way the harness does; this module
runs the checks and re-exports every public name, so plugin authors import
``bench.testing`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.api import Matcher
from bench.testing.checks import (
    CHECKS,
    check_clusters_schema,
    check_empty_input,
    check_identical_records_merged,
    check_init_stores_only_params,
    check_inputs_untouched_and_connection_usable,
    check_lens,
    check_pairs_above_threshold_within_clusters,
    check_pairs_well_formed,
    check_params_roundtrip,
    check_registered,
    check_repr_deterministic,
    check_row_order_invariance,
    check_same_seed_same_partition,
    check_single_record,
    check_tags,
    check_unrelated_records_not_merged,
    run_on,
)
from bench.testing.fixtures import ID_BASE, fixture_labels, fixture_records, fixture_tables

if TYPE_CHECKING:
    import pytest

__all__ = [
    "CHECKS",
    "ID_BASE",
    "CheckOutcome",
    "check_clusters_schema",
    "check_empty_input",
    "check_identical_records_merged",
    "check_init_stores_only_params",
    "check_inputs_untouched_and_connection_usable",
    "check_lens",
    "check_matcher",
    "check_pairs_above_threshold_within_clusters",
    "check_pairs_well_formed",
    "check_params_roundtrip",
    "check_registered",
    "check_repr_deterministic",
    "check_row_order_invariance",
    "check_same_seed_same_partition",
    "check_single_record",
    "check_tags",
    "check_unrelated_records_not_merged",
    "fixture_labels",
    "fixture_records",
    "fixture_tables",
    "iter_checks",
    "parametrize_with_checks",
    "run_on",
]


def _expected_failures(matcher: Matcher) -> dict[str, str]:
    return dict(getattr(type(matcher), "expected_failed_checks", {}) or {})


def iter_checks(matcher: Matcher) -> Iterator[tuple[Callable[[Matcher], None], str | None]]:
    """Yield ``(check, reason_if_expected_to_fail)`` for every check."""
    expected = _expected_failures(matcher)
    unknown = set(expected) - {c.__name__ for c in CHECKS}
    if unknown:
        msg = f"expected_failed_checks names unknown checks: {sorted(unknown)}"
        raise ValueError(msg)
    for check in CHECKS:
        yield check, expected.get(check.__name__)


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one check on one matcher."""

    check: str
    status: str  # passed | failed | xfail (expected failure) | xpass (expected, but passed)
    message: str = ""


def check_matcher(matcher: Matcher) -> list[CheckOutcome]:
    """Run every check on ``matcher`` and report each outcome (for ``idbench check``)."""
    out = []
    for check, reason in iter_checks(matcher):
        try:
            check(matcher)
        except Exception as exc:  # noqa: BLE001 - a failing check, whatever it raised
            message = f"{type(exc).__name__}: {exc}"
            out.append(
                CheckOutcome(check.__name__, "xfail" if reason else "failed", reason or message)
            )
        else:
            out.append(CheckOutcome(check.__name__, "xpass" if reason else "passed", reason or ""))
    return out


def parametrize_with_checks(matchers: Iterable[Matcher]) -> pytest.MarkDecorator:
    """A pytest decorator giving ``(matcher, check)`` for every matcher and check.

    Declared expected failures become ``xfail(strict=True)`` with their reason.
    """
    import pytest

    params = []
    for m in matchers:
        for check, reason in iter_checks(m):
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(m, check, id=f"{m!r}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize(("matcher", "check"), params)
