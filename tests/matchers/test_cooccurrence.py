"""The ``ip-cooccurrence`` baseline on a hand-built world of a few identifiers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from bench.run.execution import load_inputs, run_matcher
from bench.sql.engine import connect
from matchers.cooccurrence import IPCooccurrence

T0 = datetime(2024, 3, 1)


def _world() -> tuple[pa.Table, dict[str, pa.Table]]:
    """Records 1-2 share a home IP a day apart; 3-4 meet only on a busy hotspot; 5-6
    use one home IP 90 days apart (it was renumbered to another household); 7 is a
    first-party record that must stay alone."""
    crowd = list(range(100, 130))
    records = pa.table(
        {
            "record_id": pa.array([*range(1, 8), *crowd], pa.int64()),
            "source": ["cookie", "maid", "cookie", "cookie", "cookie", "maid", "crm"]
            + ["cookie"] * len(crowd),
        }
    )
    rows: list[tuple[int, str, datetime, datetime]] = [
        (1, "10.0.0.1", T0, T0 + timedelta(days=3)),
        (2, "10.0.0.1", T0 + timedelta(days=1), T0 + timedelta(days=4)),
        (3, "10.9.9.9", T0, T0 + timedelta(days=2)),
        (4, "10.9.9.9", T0, T0 + timedelta(days=2)),
        (5, "10.0.0.2", T0, T0 + timedelta(days=1)),
        (6, "10.0.0.2", T0 + timedelta(days=90), T0 + timedelta(days=91)),
    ]
    # 30 more identifiers on the hotspot at the same time: it is not private.
    rows += [(i, "10.9.9.9", T0, T0 + timedelta(days=2)) for i in crowd]
    identifier_ip = pa.table(
        {
            "record_id": pa.array([r[0] for r in rows], pa.int64()),
            "ip": [r[1] for r in rows],
            "events": pa.array([10] * len(rows), pa.int64()),
            "first_seen": [r[2] for r in rows],
            "last_seen": [r[3] for r in rows],
        }
    )
    ip_stats = pa.table(
        {
            "ip": ["10.0.0.1", "10.0.0.2", "10.9.9.9"],
            "is_cellular": [False, False, False],
            "events": pa.array([20, 20, 320], pa.int64()),
            "identifiers": pa.array([2, 2, 32], pa.int64()),
        }
    )
    return records, {"identifier_ip": identifier_ip, "ip_stats": ip_stats}


def _clusters(matcher: IPCooccurrence) -> dict[int, int]:
    records, tables = _world()
    con = connect(threads=1)
    try:
        ctx = load_inputs(con, records, tables, seed=1, threads=1)
        out = run_matcher(matcher, ctx)
    finally:
        con.close()
    return dict(
        zip(
            out.clusters["record_id"].to_pylist(),
            out.clusters["cluster_id"].to_pylist(),
            strict=True,
        )
    )


def test_private_ip_near_in_time_links_and_busy_ip_does_not() -> None:
    labels = _clusters(IPCooccurrence(max_degree=20))
    assert labels[1] == labels[2], "two devices on one home IP a day apart are linked"
    assert labels[3] != labels[4], "a hotspot of 32 identifiers is no evidence"
    assert labels[5] != labels[6], "one IP 90 days apart is no evidence (renumbering)"
    assert labels[7] == 7, "first-party records stay alone"


def test_local_degree_is_within_the_window() -> None:
    # With a window of 120 days IP 10.0.0.2 joins 5 and 6; the hotspot stays too busy.
    labels = _clusters(IPCooccurrence(max_degree=20, window_days=120.0))
    assert labels[5] == labels[6]
    assert labels[3] != labels[4]
