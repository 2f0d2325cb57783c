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

The fixture records use large, non-contiguous ids so a matcher cannot rely on ids being
row numbers.
"""

from __future__ import annotations

import copy
import importlib.metadata as md
import inspect
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from bench.api import KNOWN_TAGS, Matcher, UnsupportedInput
from bench.run.execution import (
    Outcome,
    load_inputs,
    run_matcher,
    validate_clusters,
    validate_pairs,
)
from bench.run.registry import GROUP
from bench.sql import engine

__all__ = [
    "CHECKS",
    "CheckOutcome",
    "check_matcher",
    "fixture_labels",
    "fixture_records",
    "fixture_tables",
    "iter_checks",
    "parametrize_with_checks",
    "run_on",
]

ID_BASE = 10**12


def _rid(i: int) -> int:
    # Large, non-contiguous, not in row order.
    return ID_BASE + 7919 * ((i * 37) % 101) + i


# --- fixtures ---------------------------------------------------------------------------

_PEOPLE = [
    # given, family, dob, email, phone, street, house_number, postcode, city
    (
        "Anna",
        "Schmidt",
        "1984-03-02",
        "anna.schmidt@example.org",
        "+4915112345678",
        "Lindenweg",
        "12",
        "10115",
        "Berlin",
    ),
    (
        "Boris",
        "Novak",
        "1971-11-23",
        "b.novak@mail.example",
        "+4917298765432",
        "Hafenstrasse",
        "3",
        "20095",
        "Hamburg",
    ),
    (
        "Chiara",
        "Rossi",
        "1990-06-15",
        "chiara.r@example.net",
        "+4916055511122",
        "Bergstrasse",
        "77",
        "80331",
        "Muenchen",
    ),
    (
        "Deniz",
        "Yilmaz",
        "1968-01-30",
        "deniz68@example.com",
        "+4915233344455",
        "Ringstrasse",
        "5",
        "50667",
        "Koeln",
    ),
    (
        "Emma",
        "Dubois",
        "2001-09-09",
        "emma.dubois@example.fr",
        "+4917612121212",
        "Gartenweg",
        "18",
        "60311",
        "Frankfurt",
    ),
    (
        "Farid",
        "Haddad",
        "1955-12-01",
        "farid.h@example.org",
        "+4915998877665",
        "Schulstrasse",
        "41",
        "70173",
        "Stuttgart",
    ),
    (
        "Greta",
        "Larsen",
        "1979-04-27",
        "greta.larsen@example.dk",
        "+4917011223344",
        "Muehlenweg",
        "9",
        "04109",
        "Leipzig",
    ),
    (
        "Hiro",
        "Tanaka",
        "1988-08-08",
        "hiro.tanaka@example.jp",
        "+4915144455566",
        "Kirchplatz",
        "2",
        "01067",
        "Dresden",
    ),
]
# person index -> how many identical copies (person 0 three records, person 1 two, rest one)
_COPIES = [3, 2, 1, 1, 1, 1, 1, 1]
_SOURCES = ["crm", "order", "loyalty"]


def fixture_records() -> tuple[pa.Table, dict[int, int]]:
    """PII records: two persons with identical copies, six persons sharing nothing.

    Returns the records table and ``record_id -> person index`` (the truth).
    """
    rows: list[dict[str, Any]] = []
    truth: dict[int, int] = {}
    i = 0
    for person, copies in enumerate(_COPIES):
        given, family, dob, email, phone, street, hno, postcode, city = _PEOPLE[person]
        for c in range(copies):
            rid = _rid(i)
            rows.append(
                {
                    "record_id": rid,
                    "source": _SOURCES[c % len(_SOURCES)],
                    "given_name": given,
                    "family_name": family,
                    "dob": dob,
                    "email": email,
                    "phone": phone,
                    "street": street,
                    "house_number": hno,
                    "postcode": postcode,
                    "city": city,
                    "customer_no": f"C{person:05d}" if c == 0 else None,
                    "cookie_id": None,
                }
            )
            truth[rid] = person
            i += 1
    # Anonymous identifiers: two cookies of person 0 with identical evidence, one of
    # person 5 with evidence shared with nobody.
    for person, cookie in ((0, "ck-a1"), (0, "ck-a2"), (5, "ck-f1")):
        rid = _rid(i)
        rows.append(
            {k: None for k in rows[0]} | {"record_id": rid, "source": "cookie", "cookie_id": cookie}
        )
        truth[rid] = person
        i += 1
    table = pa.Table.from_pylist(rows)
    dob = pa.compute.strptime(table["dob"], format="%Y-%m-%d", unit="s").cast(pa.date32())
    table = table.set_column(table.schema.get_field_index("dob"), "dob", dob)
    return table, truth


def fixture_tables(records: pa.Table) -> dict[str, pa.Table]:
    """Aggregated anonymous evidence for the fixture's cookie records."""
    ids = {
        c: r
        for c, r in zip(
            records["cookie_id"].to_pylist(), records["record_id"].to_pylist(), strict=True
        )
        if c
    }
    ip_rows, dom_rows, hour_rows = [], [], []
    for cookie, ip, domains in (
        ("ck-a1", "203.0.113.7", ("news.example", "shop.example")),
        ("ck-a2", "203.0.113.7", ("news.example", "shop.example")),
        ("ck-f1", "198.51.100.99", ("garden.example",)),
    ):
        rid = ids[cookie]
        ip_rows.append(
            {
                "record_id": rid,
                "ip": ip,
                "events": 40,
                "first_seen": "2026-01-03",
                "last_seen": "2026-02-20",
            }
        )
        dom_rows += [{"record_id": rid, "domain": d, "days": 12} for d in domains]
        hour_rows += [{"record_id": rid, "hour": h, "events": 5} for h in (8, 12, 20)]
    ip_stats = [
        {"ip": "203.0.113.7", "is_cellular": False, "events": 80, "identifiers": 2},
        {"ip": "198.51.100.99", "is_cellular": False, "events": 40, "identifiers": 1},
    ]
    return {
        "identifier_ip": pa.Table.from_pylist(ip_rows),
        "identifier_domain": pa.Table.from_pylist(dom_rows),
        "identifier_hour": pa.Table.from_pylist(hour_rows),
        "ip_stats": pa.Table.from_pylist(ip_stats),
    }


# --- running ----------------------------------------------------------------------------


def fixture_labels(truth: dict[int, int], persons: Iterable[int] = (0, 3)) -> pa.Table:
    """A training sample of the fixture: the labels of the records of ``persons``."""
    chosen = set(persons)
    rows = sorted((rid, p) for rid, p in truth.items() if p in chosen)
    return pa.table(
        {
            "record_id": pa.array([r for r, _ in rows], pa.int64()),
            "entity_id": pa.array([p for _, p in rows], pa.int64()),
        }
    )


def _no_labels() -> pa.Table:
    return pa.table({"record_id": pa.array([], pa.int64()), "entity_id": pa.array([], pa.int64())})


def run_on(
    matcher: Matcher,
    records: pa.Table,
    tables: dict[str, pa.Table] | None = None,
    *,
    seed: int = 0,
    validate: bool = True,
    labels: pa.Table | None = None,
) -> Outcome:
    """Run ``matcher`` in-process on in-memory inputs and return its materialised output.

    A matcher tagged ``needs_labels`` gets ``labels`` as its training sample, or an
    empty one (as the harness gives when no person was drawn), so it must cope with
    having nothing to learn from.
    """
    if labels is None and "needs_labels" in type(matcher).tags:
        labels = _no_labels()
    con = engine.connect(threads=1)
    try:
        ctx = load_inputs(con, records, tables or {}, seed=seed, threads=1, labels=labels)
        outcome = run_matcher(matcher, ctx)
        if validate:
            validate_clusters(con, outcome.clusters, ctx.records)
            if outcome.pairs is not None:
                validate_pairs(con, outcome.pairs, ctx.records)
        return outcome
    finally:
        con.close()


def _fresh(matcher: Matcher) -> Matcher:
    return type(matcher)(**copy.deepcopy(matcher.get_params()))


def _partition(outcome: Outcome) -> frozenset[frozenset[int]]:
    groups: dict[Any, set[int]] = {}
    for rid, cid in zip(
        outcome.clusters["record_id"].to_pylist(),
        outcome.clusters["cluster_id"].to_pylist(),
        strict=True,
    ):
        groups.setdefault(cid, set()).add(rid)
    return frozenset(frozenset(g) for g in groups.values())


def _cluster_of(outcome: Outcome) -> dict[int, Any]:
    return dict(
        zip(
            outcome.clusters["record_id"].to_pylist(),
            outcome.clusters["cluster_id"].to_pylist(),
            strict=True,
        )
    )


def _fixture_outcome(matcher: Matcher, *, seed: int = 0) -> Outcome:
    records, truth = fixture_records()
    labels = fixture_labels(truth) if "needs_labels" in type(matcher).tags else None
    return run_on(_fresh(matcher), records, fixture_tables(records), seed=seed, labels=labels)


# --- checks -----------------------------------------------------------------------------


def check_registered(matcher: Matcher) -> None:
    """The class is registered under its ``name`` in the ``idbench.matchers`` group."""
    cls = type(matcher)
    eps = {ep.name: ep for ep in md.entry_points(group=GROUP)}
    assert cls.name, f"{cls.__name__}.name is empty"
    assert cls.name in eps, (
        f"{cls.__name__}.name={cls.name!r} is not registered in entry-point group {GROUP!r}"
    )
    assert eps[cls.name].load() is cls, (
        f"entry point {cls.name!r} points to {eps[cls.name].value}, not {cls.__module__}.{cls.__qualname__}"
    )


def check_tags(matcher: Matcher) -> None:
    """Tags are a frozenset of known capability tags."""
    tags = type(matcher).tags
    assert isinstance(tags, frozenset), f"tags must be a frozenset, got {type(tags).__name__}"
    unknown = set(tags) - KNOWN_TAGS
    assert not unknown, f"unknown tags {sorted(unknown)}; known: {sorted(KNOWN_TAGS)}"


def check_params_roundtrip(matcher: Matcher) -> None:
    """``get_params`` names every ``__init__`` keyword, is JSON-able and rebuilds an equal matcher."""
    params = matcher.get_params()
    sig = inspect.signature(type(matcher).__init__)
    names = [p for p in sig.parameters if p != "self"]
    assert sorted(params) == sorted(names), (
        f"get_params() keys {sorted(params)} != __init__ keywords {sorted(names)}"
    )
    json.dumps(params)
    clone = _fresh(matcher)
    assert clone.get_params() == params, "rebuilding from get_params() changed the params"


def check_init_stores_only_params(matcher: Matcher) -> None:
    """``__init__`` stores its parameters unchanged and nothing else."""
    params = matcher.get_params()
    clone = type(matcher)(**params)
    attrs = {k for k in vars(clone) if not k.startswith("__")}
    assert attrs == set(params), (
        f"__init__ set attributes {sorted(attrs - set(params))} that are not parameters "
        f"(do work in fit/match)"
        if attrs - set(params)
        else f"params {sorted(set(params) - attrs)} not stored as attributes"
    )
    for k, v in params.items():
        assert getattr(clone, k) is v or getattr(clone, k) == v, (
            f"parameter {k} was changed in __init__"
        )


def check_repr_deterministic(matcher: Matcher) -> None:
    """``repr`` names the class and parameters and is the same for an equal matcher."""
    r = repr(matcher)
    assert r == repr(_fresh(matcher)), "repr differs between equal matchers"
    assert type(matcher).__name__ in r, "repr does not name the class"
    assert " at 0x" not in r, "repr contains a memory address"


def check_clusters_schema(matcher: Matcher) -> None:
    """Clusters have ``record_id`` and ``cluster_id``, no NULLs, every record exactly once."""
    _fixture_outcome(matcher)  # run_on validates


def check_pairs_well_formed(matcher: Matcher) -> None:
    """Matchers tagged ``emits_pairs`` return pairs with l < r, unique, finite scores."""
    outcome = _fixture_outcome(matcher)
    if "emits_pairs" in type(matcher).tags:
        assert outcome.pairs is not None, "tagged emits_pairs but returned no pairs"


def check_pairs_above_threshold_within_clusters(matcher: Matcher) -> None:
    """A pair scored at or above the matcher's threshold never straddles two clusters."""
    outcome = _fixture_outcome(matcher)
    threshold = getattr(matcher, "threshold", None)
    if outcome.pairs is None or threshold is None:
        return
    cluster = _cluster_of(outcome)
    for left, right, score in zip(
        outcome.pairs["record_id_l"].to_pylist(),
        outcome.pairs["record_id_r"].to_pylist(),
        outcome.pairs["score"].to_pylist(),
        strict=True,
    ):
        if score >= threshold:
            assert cluster[left] == cluster[right], (
                f"pair ({left}, {right}) scored {score} >= threshold {threshold} "
                "but its records are in different clusters"
            )


def check_identical_records_merged(matcher: Matcher) -> None:
    """Records identical on every field end up in one cluster (``pii``/``events`` matchers)."""
    tags = type(matcher).tags
    records, truth = fixture_records()
    outcome = run_on(_fresh(matcher), records, fixture_tables(records))
    cluster = _cluster_of(outcome)
    sources = dict(
        zip(records["record_id"].to_pylist(), records["source"].to_pylist(), strict=True)
    )
    groups: dict[tuple[int, bool], set[Any]] = {}
    for rid, person in truth.items():
        is_cookie = sources[rid] == "cookie"
        if (is_cookie and "events" in tags) or (not is_cookie and "pii" in tags):
            groups.setdefault((person, is_cookie), set()).add(cluster[rid])
    for (person, is_cookie), clusters in groups.items():
        kind = "cookies with identical evidence" if is_cookie else "identical records"
        assert len(clusters) == 1, (
            f"{kind} of fixture person {person} were split over {len(clusters)} clusters"
        )


def check_unrelated_records_not_merged(matcher: Matcher) -> None:
    """Records of different fixture persons, sharing no value, are never merged."""
    records, truth = fixture_records()
    outcome = run_on(_fresh(matcher), records, fixture_tables(records))
    members: dict[Any, set[int]] = {}
    for rid, cid in _cluster_of(outcome).items():
        members.setdefault(cid, set()).add(truth[rid])
    merged = [sorted(p) for p in members.values() if len(p) > 1]
    assert not merged, f"records of different persons merged: persons {merged}"


def check_same_seed_same_partition(matcher: Matcher) -> None:
    """Two runs with the same seed give the same partition (unless ``nondeterministic``)."""
    if "nondeterministic" in type(matcher).tags:
        return
    a = _partition(_fixture_outcome(matcher, seed=7))
    b = _partition(_fixture_outcome(matcher, seed=7))
    assert a == b, "the same seed gave different partitions"


def check_row_order_invariance(matcher: Matcher) -> None:
    """Reversing the input rows does not change the partition (unless ``nondeterministic``)."""
    if "nondeterministic" in type(matcher).tags:
        return
    records, _ = fixture_records()
    tables = fixture_tables(records)
    a = _partition(run_on(_fresh(matcher), records, tables, seed=3))
    rev = records.take(list(range(records.num_rows - 1, -1, -1)))
    rtables = {k: t.take(list(range(t.num_rows - 1, -1, -1))) for k, t in tables.items()}
    b = _partition(run_on(_fresh(matcher), rev, rtables, seed=3))
    assert a == b, "reversing the input row order changed the partition"


def check_empty_input(matcher: Matcher) -> None:
    """Zero records give zero clusters (or a clear ``UnsupportedInput``), not a crash."""
    records, _ = fixture_records()
    tables = fixture_tables(records)
    try:
        outcome = run_on(
            _fresh(matcher), records.slice(0, 0), {k: t.slice(0, 0) for k, t in tables.items()}
        )
    except UnsupportedInput:
        return
    assert outcome.clusters.num_rows == 0, "clusters returned for an empty input"


def check_single_record(matcher: Matcher) -> None:
    """One record gives one cluster holding it."""
    records, _ = fixture_records()
    one = records.slice(0, 1)
    tables = {
        k: (
            t.filter(pa.compute.is_in(t["record_id"], one["record_id"]))
            if "record_id" in t.column_names
            else t
        )
        for k, t in fixture_tables(records).items()
    }
    try:
        outcome = run_on(_fresh(matcher), one, tables)
    except UnsupportedInput:
        return
    assert outcome.clusters.num_rows == 1, "a single record must give exactly one cluster row"


def _snapshot(con: Any, names: Iterable[str]) -> dict[str, Any]:
    snap = {}
    for name in names:
        q = engine.quote_ident(name)
        snap[name] = engine.query_one(
            con,
            # one checksum per column (an alias would collapse them into one key)
            f"SELECT count(*) AS n, sum(hash(COLUMNS(*))) FROM {q}",
            step=f"snapshot {name}",
        )
    return snap


def _objects(con: Any) -> set[str]:
    rows = engine.query(
        con,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'",
        step="list objects",
    ).to_pylist()
    return {r["table_name"] for r in rows}


def check_inputs_untouched_and_connection_usable(matcher: Matcher) -> None:
    """Input views keep their content; new objects are namespaced; the connection still works."""
    records, truth = fixture_records()
    labels = fixture_labels(truth) if "needs_labels" in type(matcher).tags else None
    con = engine.connect(threads=1)
    try:
        ctx = load_inputs(con, records, fixture_tables(records), seed=0, threads=1, labels=labels)
        names = [ctx.records, *ctx.tables.values(), *([ctx.labels] if ctx.labels else [])]
        before, objects_before = _snapshot(con, names), _objects(con)
        run_matcher(_fresh(matcher), ctx)
        after = _snapshot(con, names)
        changed = [n for n in names if before[n] != after[n]]
        assert not changed, f"the matcher changed its input(s): {changed}"
        created = _objects(con) - objects_before
        stray = sorted(n for n in created if not n.startswith("__"))
        assert not stray, (
            f"objects created without a namespace prefix: {stray} (use ctx.temp_name(...))"
        )
        assert engine.query_one(con, "SELECT 42 AS x", step="probe")["x"] == 42
    finally:
        con.close()


#: Every check, in the order they run.
CHECKS: tuple[Callable[[Matcher], None], ...] = (
    check_registered,
    check_tags,
    check_params_roundtrip,
    check_init_stores_only_params,
    check_repr_deterministic,
    check_clusters_schema,
    check_pairs_well_formed,
    check_pairs_above_threshold_within_clusters,
    check_identical_records_merged,
    check_unrelated_records_not_merged,
    check_same_seed_same_partition,
    check_row_order_invariance,
    check_empty_input,
    check_single_record,
    check_inputs_untouched_and_connection_usable,
)


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


def parametrize_with_checks(matchers: Iterable[Matcher]):
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
