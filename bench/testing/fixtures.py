"""The conformance fixture: a handful of hand-made records with a known truth.

Eight persons with personal data (person 0 three identical records, person 1 two, the
others one each, no two persons sharing a value) and three anonymous cookie records
(two of person 0 with identical evidence, one of person 5 with evidence shared with
nobody), plus the aggregated evidence tables of the cookies. The records use large,
non-contiguous ids in no particular order, so a matcher cannot rely on ids being row
numbers. The tests of idbench itself build their small datasets from the same fixture.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

__all__ = ["ID_BASE", "fixture_labels", "fixture_records", "fixture_tables"]

ID_BASE = 10**12


def _rid(i: int) -> int:
    # Large, non-contiguous, not in row order.
    return ID_BASE + 7919 * ((i * 37) % 101) + i


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
