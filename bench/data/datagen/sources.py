"""First-party sources (CRM, web-shop orders, loyalty, POS, web logins) and the common
record schema. Each renderer returns a :class:`Rendered` block in record order (rows are
shuffled before any string is built, so record ids carry no information about persons).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from bench.data.datagen import corrupt, vocab
from bench.data.datagen._util import (
    day_to_ts,
    group_offsets,
    hex_ids,
    ip_strings,
    pick_in_group,
    splitmix64,
)
from bench.data.datagen.formats import (
    account_ids,
    cookie_key_rows,
    cookie_strings,
    loyalty_ids,
    numbered_ids,
    phone_format,
    user_agents,
)
from bench.data.datagen.network import Networks
from bench.data.datagen.world import (
    World,
    address_at,
    browsers_by_person,
    choose_email_rows,
    cookie_at,
    cookie_keys_lazy,
    email_at,
    family_at,
    phone_at,
    pick_browser,
)

RECORD_SCHEMA = pa.schema(
    [
        ("record_id", pa.int64()),
        ("source", pa.string()),
        ("ts", pa.timestamp("us")),
        ("given_name", pa.string()),
        ("middle_name", pa.string()),
        ("family_name", pa.string()),
        ("dob", pa.date32()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("street", pa.string()),
        ("house_number", pa.string()),
        ("postcode", pa.string()),
        ("city", pa.string()),
        ("region", pa.string()),
        ("country", pa.string()),
        ("customer_no", pa.string()),
        ("loyalty_id", pa.string()),
        ("account_id", pa.string()),
        ("card_token", pa.string()),
        ("store_id", pa.string()),
        ("amount", pa.float64()),
        ("cookie_id", pa.string()),
        ("maid", pa.string()),
        ("ip", pa.string()),
        ("device_type", pa.string()),
        ("os", pa.string()),
        ("browser", pa.string()),
        ("user_agent", pa.string()),
    ]
)


@dataclass
class Rendered:
    """One source's rows: attribute columns, true person per row, hazard masks."""

    source: str
    frame: pl.DataFrame
    person: np.ndarray
    hazards: dict[str, np.ndarray] = field(default_factory=dict)

    def tag(self, name: str, mask: np.ndarray) -> None:
        """OR a hazard mask into the block."""
        mask = np.asarray(mask, bool)
        if name in self.hazards:
            self.hazards[name] = self.hazards[name] | mask
        else:
            self.hazards[name] = mask


def _shuffle(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    perm = rng.permutation(len(arrays[0]))
    return [a[perm] for a in arrays]


@dataclass
class _Entries:
    """Records being filled in: the generator, the world, the block collecting hazard
    tags, each record's person and time, and the channel the data was entered through.
    """

    rng: np.random.Generator
    w: World
    r: Rendered
    persons: np.ndarray
    t: np.ndarray
    channel: str

    def typo(self, col: pl.Series, rate: float) -> pl.Series:
        """Typos in a ``rate`` share of ``col`` with the recipe's edit model, tagged."""
        n = self.w.params["noise"]
        col, hit = corrupt.typo(
            self.rng,
            col,
            rate,
            edit_mix=n["edit_mix"],
            first_letter_kept=n["first_letter_kept"],
            keyboard_row=n["keyboard_row"],
            keyboard_column=n["keyboard_column"],
        )
        self.r.tag("typo", hit)
        return col

    def junk_then_blank(
        self, cells: pl.Series, junk_share: float, junk: tuple[str, ...], blank_share: float
    ) -> pl.Series:
        """Replace a share of identifier cells by junk values, then blank a share of them."""
        cells, hit = corrupt.replace_with(self.rng, cells, junk_share, junk)
        self.r.tag("junk_identifier", hit)
        cells, _ = corrupt.blank(self.rng, cells, blank_share)
        return cells


def _person_block(
    rng: np.random.Generator,
    w: World,
    r: Rendered,
    persons: np.ndarray,
    t: np.ndarray,
    *,
    channel: str,
    fields: tuple[str, ...],
    missing: dict[str, float],
) -> dict[str, pl.Series]:
    """Name, email, phone, address and dob cells for records, with the corruption model.

    The cells are drawn in a fixed order (names, middle name, email, phone, address,
    dob): the order is part of what a seed fixes.
    """
    n = w.params["noise"]
    e = _Entries(rng, w, r, persons, t, channel)
    cols = _name_cells(e)
    if "middle_name" in fields:
        mid, _ = corrupt.blank(rng, w.p_middle.gather(persons), missing.get("middle", 0.0))
        cols["middle_name"] = mid
    if "email" in fields:
        cols["email"] = _email_cells(e, missing.get("email", 0.0))
    if "phone" in fields:
        cols["phone"] = _phone_cells(e, missing.get("phone", 0.0))
    if "postcode" in fields:
        cols |= _address_cells(e, full="street" in fields)
    if "dob" in fields:
        dob, hit = corrupt.date_errors(
            rng, w.p_dob[persons], swap_rate=n["date_swap"], year_rate=n["date_year"]
        )
        r.tag("date_error", hit)
        dob, _ = corrupt.blank(rng, dob, missing.get("dob", 0.0))
        cols["dob"] = dob
    return cols


def _name_cells(e: _Entries) -> dict[str, pl.Series]:
    """Given and family names as entered: nicknames, swaps, typos, fake names."""
    rng, w, r, persons, channel = e.rng, e.w, e.r, e.persons, e.channel
    n = w.params["noise"]
    rates = n["typo"]
    g_rate, f_rate = (
        (rates["crm_given"], rates["crm_family"])
        if channel == "crm"
        else (rates[channel], rates[channel])
    )
    given = w.p_given.gather(persons)
    family = family_at(w, persons, e.t)
    r.tag("name_change", np.isfinite(w.p_name_change_t[persons]))
    given, hit = corrupt.nickname(rng, given, n["nickname"][channel])
    r.tag("nickname", hit)
    ff = w.hh_family_first[w.p_hh[persons]]
    swap_rate = n["swap_names"] * np.where(ff, n["swap_family_first_multiplier"], 1.0)
    given, family, hit = corrupt.swap(rng, given, family, np.minimum(swap_rate, 1.0))
    r.tag("swapped_name", hit)
    given = e.typo(given, g_rate)
    family = e.typo(family, f_rate)
    given, family, hit = corrupt.fake_names(rng, given, family, n["fake_name"])
    r.tag("fake_name", hit)
    return {"given_name": given, "family_name": family}


def _email_cells(e: _Entries, blank_share: float) -> pl.Series:
    """The address each record gives (personal, work or shared), typos, junk, blanks."""
    w = e.w
    rates = w.params["noise"]["typo"]
    rows, shared = choose_email_rows(e.rng, w, e.persons)
    has = rows >= 0
    em = email_at(w, np.maximum(rows, 0), e.t)
    em = pl.select(pl.when(pl.Series(has)).then(em).otherwise(None)).to_series()
    e.r.tag("shared_family_email", shared)
    e.r.tag("email_churn", has & np.isfinite(w.e_switch[np.maximum(rows, 0)]))
    em = e.typo(em, rates["crm_given"] * 0.5 if e.channel == "crm" else rates[e.channel])
    return e.junk_then_blank(em, w.params["emails"]["junk_share"], vocab.JUNK_EMAILS, blank_share)


def _phone_cells(e: _Entries, blank_share: float) -> pl.Series:
    """The mobile number at the record's time, formatted per channel; junk, blanks."""
    num, recycled = phone_at(e.w, e.persons, e.t)
    ph = phone_format(num, e.channel)
    e.r.tag("recycled_phone", recycled)
    junk = e.w.params["phones"]["junk_share"]
    return e.junk_then_blank(ph, junk, vocab.JUNK_PHONES, blank_share)


def _address_cells(e: _Entries, *, full: bool) -> dict[str, pl.Series]:
    """The household's address at the record's time: full, or the postcode only."""
    w = e.w
    arow, moved = address_at(w, w.p_hh[e.persons], e.t)
    e.r.tag("moved", moved)
    a = w.addr[arow]
    keep = ["street", "house_number", "postcode", "city", "region"] if full else ["postcode"]
    cols = {c: a.get_column(c) for c in keep}
    cols["country"] = pl.repeat(w.params["world"]["country"], len(e.persons), eager=True)
    return cols


def _zipf_extra(rng: np.random.Generator, n: int, s: float, kmax: int) -> np.ndarray:
    """Extra records per duplicated person: P(k) ~ k^-s on 1..kmax."""
    k = np.arange(1, max(kmax, 1) + 1, dtype=np.float64)
    p = k**-s
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(n), side="right") + 1


def render_crm(rng: np.random.Generator, w: World) -> Rendered:
    """CRM contacts: one per CRM customer plus Zipf-distributed duplicates."""
    c = w.params["customers"]
    m = w.params["noise"]["missing"]
    base = np.flatnonzero(w.p_crm)
    kmax = int(c["duplicate_max"])
    k = np.arange(1, max(kmax, 1) + 1, dtype=np.float64)
    pk = k ** -c["duplicate_zipf"]
    mean_extra = float((k * pk).sum() / pk.sum())
    rate = c["crm_duplicate_rate"]
    # share d of persons with extras: d * mean_extra / (1 + d * mean_extra) = rate
    d = min(1.0, rate / max(1 - rate, 1e-9) / mean_extra) if kmax else 0.0
    dup = rng.random(len(base)) < d
    extra = np.zeros(len(base), np.int64)
    extra[dup] = _zipf_extra(rng, int(dup.sum()), c["duplicate_zipf"], kmax)
    persons = np.repeat(base, 1 + extra)
    is_dup = np.ones(len(persons), bool)
    starts = np.concatenate(([0], np.cumsum(1 + extra)[:-1]))
    is_dup[starts] = False
    t = rng.random(len(persons)) * w.horizon
    persons, t, is_dup = _shuffle(rng, persons, t, is_dup)
    r = Rendered("crm", pl.DataFrame(), persons)
    cols = _person_block(
        rng, w, r, persons, t,
        channel="crm",
        fields=("middle_name", "email", "phone", "street", "postcode", "dob"),
        missing={"phone": m["crm_phone"], "dob": m["crm_dob"], "middle": m["crm_middle"], "email": m["crm_email"]},
    )  # fmt: skip
    r.tag("duplicate", is_dup)
    # An affine bijection modulo a prime gives distinct, unordered customer numbers.
    prime = 999_999_937
    a, b = int(rng.integers(1, prime)), int(rng.integers(0, prime))
    nums = (a * np.arange(len(persons), dtype=np.int64) + b) % prime
    cols["customer_no"] = numbered_ids("C", nums, 9)
    cols["ts"] = day_to_ts(w.start, t)
    r.frame = pl.DataFrame(cols)
    return r


def _order_like(
    rng: np.random.Generator, w: World, persons: np.ndarray, t: np.ndarray, index: tuple
) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Cookie id (string), browser and shared-device flag for web events at times ``t``."""
    b = pick_browser(rng, w, persons, index)
    if w.cookies_materialised:
        keys = cookie_key_rows(w, cookie_at(w, b, t))
    else:
        keys = cookie_keys_lazy(rng, w, b, t)
    shared = (b >= 0) & w.d_shared[w.b_device[np.maximum(b, 0)]]
    return cookie_strings(keys), b, shared


def render_orders(rng: np.random.Generator, w: World, index: tuple) -> Rendered:
    """Web-shop orders by web-account holders (Poisson-gamma counts; lognormal values)."""
    c = w.params["customers"]
    m = w.params["noise"]["missing"]
    acc = np.flatnonzero(w.p_account)
    lam = c["orders_per_year"] * w.horizon / 365.0 * rng.gamma(1.0, 1.0, len(acc))
    n = rng.poisson(lam)
    persons = np.repeat(acc, n)
    t = rng.random(len(persons)) * w.horizon
    persons, t = _shuffle(rng, persons, t)
    r = Rendered("order", pl.DataFrame(), persons)
    cols = _person_block(
        rng, w, r, persons, t,
        channel="web",
        fields=("email", "phone", "street", "postcode"),
        missing={"phone": m["order_phone"]},
    )  # fmt: skip
    cookie, _, shared = _order_like(rng, w, persons, t, index)
    r.tag("shared_device", shared)
    cols["cookie_id"] = cookie
    cols["account_id"] = account_ids(w, persons)
    sigma = 0.8
    mu = np.log(c["order_value_mean"]) - sigma**2 / 2
    cols["amount"] = pl.Series(np.round(rng.lognormal(mu, sigma, len(persons)), 2))
    cols["ts"] = day_to_ts(w.start, t)
    r.frame = pl.DataFrame(cols)
    return r


def render_loyalty(rng: np.random.Generator, w: World) -> Rendered:
    """Loyalty sign-ups at the till: name, email, phone, postcode."""
    m = w.params["noise"]["missing"]
    persons = np.flatnonzero(w.p_loyalty)
    t = rng.random(len(persons)) * w.horizon
    persons, t = _shuffle(rng, persons, t)
    r = Rendered("loyalty", pl.DataFrame(), persons)
    cols = _person_block(
        rng, w, r, persons, t,
        channel="till",
        fields=("email", "phone", "postcode"),
        missing={"email": m["loyalty_email"], "phone": m["loyalty_phone"]},
    )  # fmt: skip
    cols["loyalty_id"] = loyalty_ids(w, persons)
    cols["ts"] = day_to_ts(w.start, t)
    r.frame = pl.DataFrame(cols)
    return r


def render_pos(rng: np.random.Generator, w: World) -> Rendered:
    """In-store transactions: store, card token, optional loyalty swipe, amount."""
    c = w.params["customers"]
    shoppers = np.flatnonzero(w.p_shopper)
    lam = c["pos_per_year"] * w.horizon / 365.0 * rng.gamma(2.0, 0.5, len(shoppers))
    persons = np.repeat(shoppers, rng.poisson(lam))
    t = rng.random(len(persons)) * w.horizon
    persons, t = _shuffle(rng, persons, t)
    n = len(persons)
    r = Rendered("pos", pl.DataFrame(), persons)
    arow, _ = address_at(w, w.p_hh[persons], t)
    city = w.addr.get_column("city_id").to_numpy()[arow]
    # Most shopping happens in the home city's store (assumption: 85%).
    away = rng.random(n) >= 0.85
    city = np.where(away, rng.integers(0, w.n_cities, n), city)
    store = city * 4 + rng.integers(0, 4, n)
    card = splitmix64(persons.astype(np.uint64) + np.uint64(w.salt ^ 0xCA4D))
    cash = rng.random(n) < 0.15  # cash: no card token (assumption)
    token = pl.Series(hex_ids(card))
    swipe = w.p_loyalty[persons] & (rng.random(n) < c["loyalty_swipe_share"])
    cols = {
        "store_id": numbered_ids("S", store, 6),
        "card_token": pl.select(pl.when(pl.Series(cash)).then(None).otherwise(token)).to_series(),
        "loyalty_id": pl.select(
            pl.when(pl.Series(swipe)).then(loyalty_ids(w, persons)).otherwise(None)
        ).to_series(),
        "amount": pl.Series(np.round(rng.lognormal(np.log(40) - 0.32, 0.8, n), 2)),
        "ts": day_to_ts(w.start, t),
    }
    r.frame = pl.DataFrame(cols)
    return r


def render_logins(rng: np.random.Generator, w: World, nets: Networks) -> Rendered:
    """Web logins: the authenticated link between a cookie and an account.

    Cookies of account holders (and of shared devices in their households) log in with
    a probability set so that ``login_cookie_share`` of all cookies ever log in.
    """
    c = w.params["customers"]
    nc = len(w.c_browser)
    dev = w.b_device[w.c_browser]
    hh = w.d_hh[dev]
    shared = w.d_shared[dev]
    owner = w.d_person[dev]
    # Account holders per household, for logins from shared devices.
    acc = np.flatnonzero(w.p_account)
    h_starts, h_counts = group_offsets(w.p_hh[acc], w.n_households)
    eligible = np.where(shared, h_counts[hh] > 0, w.p_account[owner])
    n_el = int(eligible.sum())
    p_login = min(1.0, c["login_cookie_share"] * nc / n_el) if n_el else 0.0
    logs = eligible & (rng.random(nc) < p_login)
    cookies = np.flatnonzero(logs)
    k = 1 + rng.poisson(max(c["logins_per_cookie"] - 1.0, 0.0), len(cookies))
    rows = np.repeat(cookies, k)
    t = w.c_start[rows] + rng.random(len(rows)) * (w.c_end[rows] - w.c_start[rows])
    (rows, t) = _shuffle(rng, rows, t)
    sh = shared[rows]
    who = pick_in_group(rng, h_starts, h_counts, hh[rows])
    persons = np.where(sh, acc[np.maximum(who, 0)], owner[rows])
    r = Rendered("login", pl.DataFrame(), persons)
    r.tag("shared_device", sh)
    r.tag("itp_cookie_reset", w.c_itp[rows])
    b = w.c_browser[rows]
    d = w.b_device[b]
    ua = user_agents(w.d_os[d], w.b_browser[b])
    ip = nets.home(hh[rows], t)
    r.frame = pl.DataFrame(
        {
            "ts": day_to_ts(w.start, t),
            "cookie_id": cookie_strings(cookie_key_rows(w, rows)),
            "account_id": account_ids(w, persons),
            "ip": ip_strings(ip),
            "user_agent": ua,
        }
    )
    return r


def render_first_party(
    rng: np.random.Generator, w: World, nets: Networks | None, sources: list[str]
) -> list[Rendered]:
    """Render the requested first-party sources in canonical order (``nets``: for logins)."""
    index = browsers_by_person(w)
    out = []
    for s in sources:
        if s == "crm":
            out.append(render_crm(rng, w))
        elif s == "order":
            out.append(render_orders(rng, w, index))
        elif s == "loyalty":
            out.append(render_loyalty(rng, w))
        elif s == "pos":
            out.append(render_pos(rng, w))
        elif s == "login":
            assert nets is not None, "logins carry IP addresses: build the networks"
            out.append(render_logins(rng, w, nets))
    return out


__all__ = ["RECORD_SCHEMA", "Rendered", "render_first_party"]
