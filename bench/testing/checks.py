"""The conformance checks, each a function of a matcher that raises on a violation.

The checks run the matcher in-process on the fixture (:mod:`bench.testing.fixtures`)
through the same code the harness uses (:mod:`bench.run.execution`), so a matcher that
passes here loads, runs and validates the same way in a suite run. :data:`CHECKS` lists
them in the order they run.
"""

from __future__ import annotations

import copy
import importlib.metadata as md
import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa

from bench.api import KNOWN_TAGS, LENSES, Matcher, UnsupportedInput
from bench.run.execution import (
    Outcome,
    load_inputs,
    run_matcher,
    validate_clusters,
    validate_pairs,
)
from bench.run.registry import GROUP
from bench.sql import engine
from bench.testing.fixtures import fixture_labels, fixture_records, fixture_tables

#: The suite reaches the checks through :data:`CHECKS`; :mod:`bench.testing` re-exports
#: them by name as well.
__all__ = ["CHECKS", "run_on"]


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


def check_lens(matcher: Matcher) -> None:
    """The class declares the lens it looks through, one of :data:`bench.api.LENSES`."""
    cls = type(matcher)
    lens = getattr(cls, "lens", "")
    assert isinstance(lens, str) and lens in LENSES, (
        f"{cls.__name__}.lens={lens!r} is not one of {', '.join(map(repr, LENSES))}; "
        "declare the lens the matcher looks through (lens: ClassVar[str] = ...)"
    )


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
    check_lens,
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
