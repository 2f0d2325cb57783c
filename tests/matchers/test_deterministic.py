"""Deterministic matchers: normalisation, closure, guards, bridges (tiny hand-made tables)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import phonenumbers
import pyarrow as pa
import pytest

from bench.api import EdgeLinks, MatchContext, UnsupportedInput
from bench.sql.engine import connect, materialise
from matchers.baseline import Exact, normalised
from matchers.bridges import LoginBridge
from matchers.cascade import Cascade, CascadeGuarded
from matchers.normalise import (
    email_base_sql,
    email_sql,
    identifier_sql,
    lower_trim_sql,
    name_sql,
    phone_map_phonenumbers,
    phone_sql,
    postcode_sql,
)

COLUMNS = (
    "source",
    "email",
    "phone",
    "customer_no",
    "given_name",
    "family_name",
    "dob",
    "postcode",
    "account_id",
    "cookie_id",
    "ts",
)


def rid(i: int) -> int:
    """Large, non-contiguous record ids."""
    return 10**12 + 7919 * i


def table(rows: list[dict[str, Any]]) -> pa.Table:
    """Records table: ``rid(i)`` ids and every canonical column (missing -> null)."""
    data: dict[str, list] = {"record_id": [r["record_id"] for r in rows]}
    for col in COLUMNS:
        data[col] = [r.get(col) for r in rows]
    types = {c: pa.string() for c in COLUMNS}
    types["dob"] = pa.date32()
    types["ts"] = pa.timestamp("us")
    data["source"] = [r.get("source", "crm") for r in rows]
    return pa.table(
        {"record_id": pa.array(data["record_id"], pa.int64())}
        | {c: pa.array(data[c], types[c]) for c in COLUMNS}
    )


def run(matcher, rows: list[dict[str, Any]]) -> dict[int, int]:
    """Run ``matcher`` on ``rows``; return record_id -> cluster_id (checking the contract)."""
    con = connect(threads=2)
    data = table(rows)
    con.sql("CREATE TABLE records AS SELECT * FROM data")
    ctx = MatchContext(con=con, records="records", threads=2)
    result = matcher.fit(ctx).match(ctx)
    out = materialise(con, result.clusters, step="clusters").to_pylist()
    ids = [r["record_id"] for r in out]
    assert sorted(ids) == sorted(data["record_id"].to_pylist()), "every record exactly once"
    con.close()
    return {r["record_id"]: r["cluster_id"] for r in out}


def partition(labels: dict[int, int]) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for rec, lab in labels.items():
        groups.setdefault(lab, set()).add(rec)
    return {frozenset(g) for g in groups.values()}


def together(labels: dict[int, int], *ids: int) -> bool:
    return len({labels[i] for i in ids}) == 1


def scalar(sql: str, value: Any) -> Any:
    con = connect(threads=1)
    try:
        return con.sql(f"SELECT {sql} FROM (SELECT ?::VARCHAR AS v)", params=[value]).fetchall()[0][
            0
        ]
    finally:
        con.close()


# --- normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Anna.Schmidt@Example.ORG ", "anna.schmidt@example.org"),
        ("a b@x.de", "ab@x.de"),
        ("not-an-email", None),
        ("two@@x.com", None),
        ("@x.com", None),
        ("", None),
    ],
)
def test_email_basic(raw, expected):
    assert scalar(email_sql("v"), raw) == expected


#: Characters that trim, lower and replace treat differently: ASCII and Unicode space
#: separators (trimmed), tabs and zero-width spaces (not trimmed), letters whose lower
#: case changes length or needs Unicode tables.
TRICKY = [
    " ",
    "\t",
    "\n",
    "\u00a0",
    "\u2003",
    "\u3000",
    "\u200b",
    "A",
    "z",
    "@",
    ".",
    "É",
    "ß",
    "İ",
    "Ω",
    "1",
]


def test_skipping_trim_on_clean_ascii_changes_no_value() -> None:
    """The gated trims equal the plain ones on random strings of tricky characters."""
    rng = random.Random(3)
    values = ["", " ", "\u00a0"] + [
        "".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 6))) for _ in range(5000)
    ]
    con = connect(threads=1)
    con.sql("CREATE TABLE t AS SELECT unnest(?::VARCHAR[]) AS v", params=[values])
    rows = con.sql(
        f"""SELECT count(*) FILTER (WHERE {lower_trim_sql("v")} IS DISTINCT FROM lower(trim(v))),
                   count(*) FILTER (WHERE {email_base_sql("v")}
                                    IS DISTINCT FROM replace(lower(trim(v)), ' ', '')),
                   count(*) FILTER (WHERE {identifier_sql("v")}
                                    IS DISTINCT FROM NULLIF(lower(trim(v)), '')),
                   count(*) FILTER (WHERE {normalised("v")}
                                    IS DISTINCT FROM NULLIF(lower(trim(v)), '')),
                   count(*) FILTER (WHERE trim(v) <> v),
                   count(*) FILTER (WHERE strlen(v) = length(v) AND trim(v) <> v)
            FROM t"""
    ).fetchall()[0]
    con.close()
    assert rows[:4] == (0, 0, 0, 0)
    assert rows[4] > 1000 and rows[5] > 100  # the sample does exercise both kinds of trim


def test_the_ascii_letters_shortcut_of_names_changes_no_value() -> None:
    """``name_sql`` equals its full chain (accents, punctuation, spaces) on any string."""
    rng = random.Random(5)
    letters = [*TRICKY, "b", "Q", "-", "'", "é", "x", "Y"]
    values = ["", "Ann", "ann", "O'Neil", "Zoë", "İlker", "  ", "A B"] + [
        "".join(rng.choice(letters) for _ in range(rng.randint(1, 6))) for _ in range(5000)
    ]
    full = (
        "NULLIF(trim(regexp_replace(regexp_replace(strip_accents(lower(v)), "
        "'[^\\p{L}\\p{N}\\s]', '', 'g'), '\\s+', ' ', 'g')), '')"
    )
    con = connect(threads=1)
    con.sql("CREATE TABLE t AS SELECT unnest(?::VARCHAR[]) AS v", params=[values])
    differ, shortcut = con.sql(
        f"""SELECT count(*) FILTER (WHERE {name_sql("v")} IS DISTINCT FROM {full}),
                   count(*) FILTER (WHERE regexp_full_match(v, '[A-Za-z]+'))
            FROM t"""
    ).fetchall()[0]
    con.close()
    assert differ == 0
    assert 100 < shortcut < len(values) - 1000  # both branches are exercised


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J.Doe+news@GoogleMail.com", "jdoe@gmail.com"),
        ("j.doe+x@outlook.com", "j.doe@outlook.com"),
        ("plain@web.de", "plain@web.de"),
    ],
)
def test_email_canonical(raw, expected):
    assert scalar(email_sql("v", canonical=True), raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(212) 555-0101", "US", "+12125550101"),
        ("1-212-555-0101", "US", "+12125550101"),
        ("+1 212 555 0101", "US", "+12125550101"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("0151 12345678", "DE", "+4915112345678"),
        ("+49 151 12345678", "DE", "+4915112345678"),
        ("12", "US", None),
        ("", "US", None),
    ],
)
def test_phone_sql_e164(raw, region, expected):
    assert scalar(phone_sql("v", region=region), raw) == expected


def test_phone_sql_agrees_with_phonenumbers():
    raws = [
        "(212) 555-0101",
        "212.555.0199",
        "+1 (646) 555 0123",
        "1 415 555 2671",
        "+44 20 7946 0958",
        "+49 30 123456",
        "415-555-2671",
    ]
    con = connect(threads=1)
    con.sql("CREATE TABLE p AS SELECT unnest(?::VARCHAR[]) AS v", params=[raws])
    phone_map_phonenumbers(con, "SELECT v FROM p", "__idbench_m_pm", region="US", batch_size=3)
    got = dict(con.sql(f"SELECT v, {phone_sql('v')} FROM p").fetchall())
    ref = dict(con.sql("SELECT raw, e164 FROM __idbench_m_pm").fetchall())
    con.close()
    assert got == ref
    for raw in raws:
        num = phonenumbers.parse(raw, "US")
        assert ref[raw] == phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def test_name_and_postcode():
    assert scalar(name_sql("v"), "  Zoë  Núñez-O'Brien ") == "zoe nunezobrien"
    assert scalar(name_sql("v"), "...") is None
    assert scalar(postcode_sql("v"), "sw1a 1aa") == "SW1A1AA"


# --- closure ----------------------------------------------------------------------------


def test_transitive_closure_email_then_phone():
    rows = [
        {"record_id": rid(1), "email": "a@x.com"},
        {"record_id": rid(2), "email": "A@X.com ", "phone": "(212) 555-0101"},
        {"record_id": rid(3), "phone": "+1 212 555 0101"},
        {"record_id": rid(4), "email": "other@x.com"},
    ]
    labels = run(Cascade(rules=[["email"], ["phone"]]), rows)
    assert together(labels, rid(1), rid(2), rid(3))
    assert labels[rid(1)] == rid(1)  # cluster id = smallest record id
    assert labels[rid(4)] == rid(4)


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
def test_chain_of_64_is_one_cluster(order):
    ids = [rid(i) for i in range(64)]
    if order == "descending":
        ids.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(ids)
    # position p shares its e-mail with p+1 (p even) or its phone with p+1 (p odd)
    rows = [
        {"record_id": rec, "email": f"p{pos // 2}@x.com", "phone": f"212555{(pos + 1) // 2:04d}"}
        for pos, rec in enumerate(ids)
    ]
    labels = run(Cascade(rules=[["email"], ["phone"]]), rows)
    assert len(set(labels.values())) == 1
    assert set(labels.values()) == {min(ids)}


def test_row_order_invariance():
    rows = [
        {"record_id": rid(i), "email": f"e{i % 7}@x.com", "phone": f"212555{i % 5:04d}"}
        for i in range(40)
    ] + [{"record_id": rid(100 + i)} for i in range(5)]
    first = run(Cascade(rules=[["email"], ["phone"]]), rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert run(Cascade(rules=[["email"], ["phone"]]), shuffled) == first


def test_multi_column_rule_and_missing_values():
    rows = [
        {
            "record_id": rid(1),
            "given_name": "Zoë",
            "family_name": "Smith",
            "dob": dt.date(1980, 1, 2),
        },
        {
            "record_id": rid(2),
            "given_name": "zoe",
            "family_name": "SMITH ",
            "dob": dt.date(1980, 1, 2),
        },
        {"record_id": rid(3), "given_name": "Zoe", "family_name": "Smith", "dob": None},
        {"record_id": rid(4), "given_name": "Zoe", "family_name": "Smith", "dob": None},
    ]
    labels = run(Cascade(rules=[["given_name", "family_name", "dob"]]), rows)
    assert together(labels, rid(1), rid(2))
    assert labels[rid(3)] == rid(3) and labels[rid(4)] == rid(4)  # missing is not evidence


def test_rules_with_missing_columns_are_skipped_or_unsupported():
    con = connect(threads=1)
    con.sql(
        "CREATE TABLE records AS SELECT 1::BIGINT AS record_id, 'crm' AS source, 'a@x.com' AS email"
    )
    ctx = MatchContext(con=con, records="records")
    res = Cascade(rules=[["email"], ["phone"]]).match(ctx)
    assert res.diagnostics["rules_skipped"] == [["phone"]]
    with pytest.raises(UnsupportedInput):
        Cascade(rules=[["phone"]]).match(ctx)
    con.close()


# --- guards -----------------------------------------------------------------------------


def test_junk_email_does_not_link():
    rows = [
        {"record_id": rid(1), "email": "noemail@shop.com"},
        {"record_id": rid(2), "email": "NoEmail@shop.com"},
        {"record_id": rid(3), "email": "test@test.com"},
        {"record_id": rid(4), "email": "test@test.com"},
        {"record_id": rid(5), "phone": "000-000-0000"},
        {"record_id": rid(6), "phone": "(000) 000 0000"},
        {"record_id": rid(7), "email": "real@shop.com"},
        {"record_id": rid(8), "email": "real@shop.com"},
    ]
    plain = run(Cascade(rules=[["email"], ["phone"]]), rows)
    assert together(plain, rid(1), rid(2)) and together(plain, rid(5), rid(6))
    guarded = run(Cascade(rules=[["email"], ["phone"]], exclude_junk=True), rows)
    assert len({guarded[rid(i)] for i in range(1, 7)}) == 6
    assert together(guarded, rid(7), rid(8))
    listed = run(
        Cascade(rules=[["email"], ["phone"]], exclude_values={"email": [" REAL@shop.com"]}),
        rows,
    )
    assert not together(listed, rid(7), rid(8))
    assert together(listed, rid(1), rid(2))


def test_max_group_size():
    rows = [{"record_id": rid(i), "phone": "212 555 0000"} for i in range(5)] + [
        {"record_id": rid(10 + i), "phone": "212 555 0001"} for i in range(3)
    ]
    labels = run(Cascade(rules=[["phone"]], max_group_size=3), rows)
    assert len({labels[rid(i)] for i in range(5)}) == 5  # shared by 5 > 3: ignored
    assert together(labels, rid(10), rid(11), rid(12))
    # same guard inside a multi-rule cascade
    labels = run(Cascade(rules=[["phone"], ["email"]], max_group_size=3), rows)
    assert len({labels[rid(i)] for i in range(5)}) == 5


def test_max_group_size_spares_authenticated_ids():
    # 5 logins on one account: one customer's history, not a shared value. The cap is
    # scoped to shareable keys (GROUP_SIZE_KEYS: e-mail, phone, name rules) by default.
    rows = [{"record_id": rid(i), "account_id": "acc-1", "phone": "2125550000"} for i in range(5)]
    labels = run(Cascade(rules=[["account_id"]], max_group_size=3), rows)
    assert together(labels, *(rid(i) for i in range(5)))
    both = run(Cascade(rules=[["account_id"], ["phone"]], max_group_size=3), rows)
    assert together(both, *(rid(i) for i in range(5)))
    # listing the column brings it under the cap (the old, unscoped behaviour)
    capped = run(
        Cascade(rules=[["account_id"]], max_group_size=3, group_size_keys=["account_id"]),
        rows,
    )
    assert len(set(capped.values())) == 5
    assert Cascade(group_size_keys=["account_id"]).get_params()["group_size_keys"] == ["account_id"]


def test_max_cluster_size_counts_profiles_not_events():
    # One account with 6 logins plus a CRM record joined by e-mail: 2 profiles, 7 records.
    rows = [{"record_id": rid(i), "account_id": "acc-1"} for i in range(6)]
    rows[0]["email"] = "a@x.com"
    rows.append({"record_id": rid(9), "email": "a@x.com"})
    labels = run(Cascade(rules=[["account_id"], ["email"]], max_cluster_size=3), rows)
    assert len(set(labels.values())) == 1
    # counted in records (every column shareable) the cluster is over the cap
    split = run(
        Cascade(
            rules=[["account_id"], ["email"]],
            max_cluster_size=3,
            group_size_keys=["account_id", "email"],
        ),
        rows,
    )
    assert len(set(split.values())) > 1


def test_unique_keys_split_two_customer_numbers():
    rows = [
        # husband and wife: own customer numbers, a shared family e-mail
        {"record_id": rid(1), "customer_no": "C1", "email": "family@x.com", "phone": "2125550001"},
        {"record_id": rid(2), "customer_no": "C2", "email": "family@x.com", "phone": "2125550002"},
        {"record_id": rid(3), "phone": "2125550001"},  # husband's order
        {"record_id": rid(4), "phone": "2125550002"},  # wife's order
        {"record_id": rid(5), "customer_no": "C1"},  # duplicate CRM row of the husband
    ]
    plain = run(Cascade(rules=[["customer_no"], ["email"], ["phone"]]), rows)
    assert len(set(plain.values())) == 1  # the family e-mail chains everyone together
    guarded = run(
        Cascade(rules=[["customer_no"], ["email"], ["phone"]], unique_keys=["customer_no"]), rows
    )
    assert partition(guarded) == {
        frozenset({rid(1), rid(3), rid(5)}),
        frozenset({rid(2), rid(4)}),
    }


def test_unique_keys_refuse_a_chained_component():
    # no single e-mail group holds two customer numbers, but the chain C1-u-C2 would
    rows = [
        {"record_id": rid(1), "customer_no": "C1", "email": "a@x.com"},
        {"record_id": rid(2), "email": "a@x.com", "phone": "2125550009"},
        {"record_id": rid(3), "email": "b@x.com", "phone": "2125550009"},
        {"record_id": rid(4), "customer_no": "C2", "email": "b@x.com"},
    ]
    guarded = run(Cascade(rules=[["email"], ["phone"]], unique_keys=["customer_no"]), rows)
    assert partition(guarded) == {frozenset({rid(1), rid(2)}), frozenset({rid(3), rid(4)})}
    labels = {v for v in guarded.values()}
    assert labels == {rid(1), rid(3)}


def test_phone_window_splits_recycled_number():
    day = dt.datetime(2024, 1, 1)
    rows = [
        {"record_id": rid(1), "phone": "2125550100", "ts": day},
        {"record_id": rid(2), "phone": "2125550100", "ts": day + dt.timedelta(days=20)},
        {"record_id": rid(3), "phone": "2125550100", "ts": day + dt.timedelta(days=40)},
        # number reassigned after 90 days without use
        {"record_id": rid(4), "phone": "2125550100", "ts": day + dt.timedelta(days=130)},
        {"record_id": rid(5), "phone": "2125550100", "ts": day + dt.timedelta(days=150)},
        {"record_id": rid(6), "phone": "2125550100", "ts": None},
    ]
    plain = run(Cascade(rules=[["phone"]]), rows)
    assert len(set(plain.values())) == 1
    for rules in ([["phone"]], [["phone"], ["email"]]):
        windowed = run(Cascade(rules=rules, time_windows={"phone": 45}), rows)
        assert partition(windowed) == {
            frozenset({rid(1), rid(2), rid(3)}),
            frozenset({rid(4), rid(5)}),
            frozenset({rid(6)}),
        }


def test_max_cluster_size_falls_back_to_stronger_rules():
    rows = [
        # two persons, each with two records sharing an e-mail, joined by a shop phone
        {"record_id": rid(1), "email": "a@x.com", "phone": "2125550777"},
        {"record_id": rid(2), "email": "a@x.com"},
        {"record_id": rid(3), "email": "b@x.com", "phone": "2125550777"},
        {"record_id": rid(4), "email": "b@x.com"},
        {"record_id": rid(5), "email": "c@x.com"},
        {"record_id": rid(6), "email": "c@x.com"},
    ]
    plain = run(Cascade(rules=[["email"], ["phone"]]), rows)
    assert together(plain, rid(1), rid(2), rid(3), rid(4))
    capped = run(Cascade(rules=[["email"], ["phone"]], max_cluster_size=3), rows)
    assert partition(capped) == {
        frozenset({rid(1), rid(2)}),
        frozenset({rid(3), rid(4)}),
        frozenset({rid(5), rid(6)}),
    }
    # over the cap after the strongest rule already: singletons
    tiny = run(Cascade(rules=[["email"], ["phone"]], max_cluster_size=1), rows)
    assert len(set(tiny.values())) == 6


def test_guarded_preset_params_and_defaults():
    m = CascadeGuarded()
    assert m.get_params()["max_group_size"] == 50
    assert m.get_params()["unique_keys"] is None  # None = the preset's default
    rows = [
        {"record_id": rid(1), "customer_no": "C1", "email": "family@x.com"},
        {"record_id": rid(2), "customer_no": "C2", "email": "family@x.com"},
        {"record_id": rid(3), "email": "noemail@x.com"},
        {"record_id": rid(4), "email": "noemail@x.com"},
    ]
    labels = run(CascadeGuarded(), rows)
    assert len(set(labels.values())) == 4
    # The group cap spares authenticated ids: 60 logins on one account stay together
    # (before the cap was scoped, the account was shared by > 50 records and linked
    # nothing; on identity-graph small that cut pairwise recall from 0.60 to 0.005).
    logins = [{"record_id": rid(i), "account_id": "acc-1"} for i in range(60)]
    labels = run(CascadeGuarded(), logins)
    assert len(set(labels.values())) == 1
    assert CascadeGuarded().get_params()["group_size_keys"] is None


# --- bridges ----------------------------------------------------------------------------


def test_login_bridge_links_cookie_through_login_to_customer():
    rows = [
        {"record_id": rid(1), "source": "cookie", "cookie_id": "ck-1"},
        {"record_id": rid(2), "source": "login", "cookie_id": "ck-1", "account_id": "acc-9"},
        {"record_id": rid(3), "source": "crm", "account_id": "acc-9", "email": "z@x.com"},
        {"record_id": rid(4), "source": "order", "cookie_id": "ck-2", "email": "Z@x.com"},
        {"record_id": rid(5), "source": "cookie", "cookie_id": "ck-2"},
        {"record_id": rid(6), "source": "cookie", "cookie_id": "ck-3"},  # never logged in
        {"record_id": rid(7), "source": "crm", "phone": "2125550101", "email": "q@x.com"},
        {"record_id": rid(8), "source": "order", "phone": "2125550101"},  # phone: not a bridge
    ]
    labels = run(LoginBridge(), rows)
    assert together(labels, rid(1), rid(2), rid(3), rid(4), rid(5))
    assert labels[rid(6)] == rid(6)
    assert not together(labels, rid(7), rid(8))
    full = run(Cascade(), rows)
    assert together(full, rid(7), rid(8))


# --- the in-memory closure against star edges in SQL ------------------------------------


def _random_rows(seed: int, n: int = 400) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    emails = ["Ann@X.com", " ann@x.com", "bob@y.org", "noemail@shop.com", "zoë@日本.jp", "bad"]
    phones = ["(212) 555-0101", "+1 212 555 0101", "2125550102", "000-000-0000", "+44 20 7946 0958"]
    day = dt.datetime(2026, 1, 1)

    def pick(values: list[Any], p_null: float = 0.4) -> Any:
        return None if rng.random() < p_null else rng.choice(values)

    return [
        {
            "record_id": rid(i),
            "email": pick(emails + [f"p{rng.randrange(60)}@x.com" for _ in range(4)]),
            "phone": pick(phones + [f"212555{rng.randrange(80):04d}" for _ in range(4)]),
            "customer_no": pick([f"C{rng.randrange(150)}", f" c{rng.randrange(150)} "], 0.6),
            "account_id": pick([f"acc-{rng.randrange(90)}", ""], 0.6),
            "cookie_id": pick([f"ck{rng.randrange(100)}"], 0.5),
            "given_name": pick(["Zoë", "zoe", "Ann", "ANN ", "Li"], 0.2),
            "family_name": pick(["Smith", "smith", "O'Neil", "Ng"], 0.2),
            "dob": pick([dt.date(1980, 1, 2), dt.date(1990, 5, 6)], 0.5),
            "postcode": pick(["SW1A 1AA", "sw1a1aa", "10115"], 0.3),
            "ts": day + dt.timedelta(days=rng.randrange(400)),
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_group_size": 3},
        {"max_group_size": 2, "group_size_keys": ["email", "phone", "customer_no", "cookie_id"]},
        {"exclude_junk": True, "exclude_values": {"email": ["BOB@y.org"], "cookie_id": ["ck7"]}},
        {"time_windows": {"phone": 45}},
        {"email_canonical": True, "phone_method": "phonenumbers"},
        {"rules": [["dob"], ["email"], ["postcode"], ["account_id"]]},
    ],
    ids=["default", "capped", "capped-all", "exclusions", "window", "canonical", "dob-rule"],
)
def test_in_memory_key_grouping_builds_the_star_edge_partition(
    params: dict[str, Any], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On DuckDB a rule on one text key is grouped in memory by its bytes; every rule's
    # star edges in SQL (the other engines' path) must give the same partition.
    rows = _random_rows(seed)
    in_memory = run(Cascade(**params), rows)
    monkeypatch.setattr(
        Cascade,
        "_links",
        lambda self, ctx, rule, options: EdgeLinks(self._star_edges_sql(ctx, rule, options)),
    )
    star_edges = run(Cascade(**params), rows)
    assert partition(in_memory) == partition(star_edges)
    assert in_memory == star_edges  # same labels: the smallest record id
    assert len(partition(in_memory)) < len(rows)  # the rules do link records


def test_a_rule_on_several_columns_needs_every_column_equal() -> None:
    # Run together, ("ab", "c") and ("a", "bc") read the same; they are different keys.
    rows = [
        {"record_id": rid(1), "customer_no": "ab", "account_id": "c"},
        {"record_id": rid(2), "customer_no": "a", "account_id": "bc"},
        {"record_id": rid(3), "customer_no": " AB", "account_id": "C"},
        {"record_id": rid(4), "customer_no": "1:a", "account_id": "b"},
        {"record_id": rid(5), "customer_no": "1", "account_id": "a:b"},
        {"record_id": rid(6), "customer_no": "a", "account_id": None},
        {"record_id": rid(7), "customer_no": "a", "account_id": None},
    ]
    labels = run(Cascade(rules=[["customer_no", "account_id"]]), rows)
    assert partition(labels) == {
        frozenset({rid(1), rid(3)}),
        *({frozenset({rid(i)}) for i in (2, 4, 5, 6, 7)}),
    }


@pytest.mark.parametrize("keys", [["email"], ["given_name", "dob"], ["family_name", "postcode"]])
def test_exact_clusters_are_the_key_groups(keys: list[str]) -> None:
    # Checked against a window over the normalised keys (the matcher groups them in
    # memory on DuckDB): equal keys share the smallest record id, a missing key is alone.
    rows = _random_rows(3, n=600)
    got = run(Exact(keys=keys), rows)
    con = connect(threads=1)
    con.register("data", table(rows))
    con.sql("CREATE TABLE t AS SELECT * FROM data")
    k = ", ".join(normalised(c) for c in keys)
    present = " AND ".join(f"{normalised(c)} IS NOT NULL" for c in keys)
    want = dict(
        con.sql(
            f"SELECT record_id, CASE WHEN {present} THEN min(record_id) OVER (PARTITION BY {k}) "
            f"ELSE record_id END FROM t"
        ).fetchall()
    )
    con.close()
    assert got == want
    assert len(set(got.values())) < len(rows)
