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
from bench.data.datagen._util import day_to_ts, hex_ids, ip_strings, pick_in_group, splitmix64
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


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    return pl.select(
        pl.lit(prefix) + pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)
    ).to_series()


def account_ids(w: World, persons: np.ndarray) -> pl.Series:
    """Stable web-account id per person (a keyed hash: ids do not reveal person order)."""
    h = splitmix64(persons.astype(np.uint64) + np.uint64(w.salt ^ 0xACC0)) % np.uint64(10**10)
    return _ids("A", h, 10)


def loyalty_ids(w: World, persons: np.ndarray) -> pl.Series:
    """Stable loyalty-card number per member."""
    h = splitmix64(persons.astype(np.uint64) + np.uint64(w.salt ^ 0x10A1)) % np.uint64(10**9)
    return _ids("L", h, 9)


def cookie_strings(keys: np.ndarray) -> pl.Series:
    """Cookie id strings from uint64 keys (0 = no cookie -> null)."""
    s = pl.Series(hex_ids(keys))
    return pl.select(pl.when(pl.Series(keys != 0)).then(s).otherwise(None)).to_series()


def cookie_key_rows(w: World, rows: np.ndarray) -> np.ndarray:
    """Keys of materialised cookie rows (0 where row is -1)."""
    k = splitmix64(np.maximum(rows, 0).astype(np.uint64) + np.uint64(w.salt)) | np.uint64(1)
    return np.where(rows >= 0, k, np.uint64(0))


def _phone_format(nums: np.ndarray, style: str) -> pl.Series:
    """Phone numbers as entered: call-centre style, web free text, or bare digits."""
    s = pl.Series(nums).cast(pl.String).str.zfill(10)
    a, b, c = s.str.slice(0, 3), s.str.slice(3, 3), s.str.slice(6, 4)
    if style == "crm":
        out = pl.select(
            pl.concat_str([pl.lit("("), a, pl.lit(") "), b, pl.lit("-"), c])
        ).to_series()
    elif style == "web":
        out = pl.select(
            pl.when(pl.Series(nums % 3 == 0))
            .then(pl.concat_str([a, pl.lit("-"), b, pl.lit("-"), c]))
            .when(pl.Series(nums % 3 == 1))
            .then(pl.concat_str([pl.lit("+1 "), a, pl.lit(" "), b, pl.lit(" "), c]))
            .otherwise(s)
        ).to_series()
    else:
        out = s
    return pl.select(pl.when(pl.Series(nums >= 0)).then(out).otherwise(None)).to_series()


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
    """Name, email, phone, address and dob cells for records, with the corruption model."""
    n = w.params["noise"]
    typo_kw = {
        "edit_mix": n["edit_mix"],
        "first_letter_kept": n["first_letter_kept"],
        "keyboard_row": n["keyboard_row"],
        "keyboard_column": n["keyboard_column"],
    }
    rates = n["typo"]
    g_rate, f_rate = (
        (rates["crm_given"], rates["crm_family"])
        if channel == "crm"
        else (rates[channel], rates[channel])
    )
    cols: dict[str, pl.Series] = {}
    given = w.p_given.gather(persons)
    family = family_at(w, persons, t)
    r.tag("name_change", np.isfinite(w.p_name_change_t[persons]))
    given, hit = corrupt.nickname(rng, given, n["nickname"][channel])
    r.tag("nickname", hit)
    ff = w.hh_family_first[w.p_hh[persons]]
    swap_rate = n["swap_names"] * np.where(ff, n["swap_family_first_multiplier"], 1.0)
    given, family, hit = corrupt.swap(rng, given, family, np.minimum(swap_rate, 1.0))
    r.tag("swapped_name", hit)
    given, hit = corrupt.typo(rng, given, g_rate, **typo_kw)
    r.tag("typo", hit)
    family, hit = corrupt.typo(rng, family, f_rate, **typo_kw)
    r.tag("typo", hit)
    given, family, hit = corrupt.fake_names(rng, given, family, n["fake_name"])
    r.tag("fake_name", hit)
    cols["given_name"], cols["family_name"] = given, family
    if "middle_name" in fields:
        mid, _ = corrupt.blank(rng, w.p_middle.gather(persons), missing.get("middle", 0.0))
        cols["middle_name"] = mid
    if "email" in fields:
        rows, shared = choose_email_rows(rng, w, persons)
        has = rows >= 0
        em = email_at(w, np.maximum(rows, 0), t)
        em = pl.select(pl.when(pl.Series(has)).then(em).otherwise(None)).to_series()
        r.tag("shared_family_email", shared)
        r.tag("email_churn", has & np.isfinite(w.e_switch[np.maximum(rows, 0)]))
        e_rate = rates["crm_given"] * 0.5 if channel == "crm" else rates[channel]
        em, hit = corrupt.typo(rng, em, e_rate, **typo_kw)
        r.tag("typo", hit)
        em, hit = corrupt.replace_with(rng, em, w.params["emails"]["junk_share"], vocab.JUNK_EMAILS)
        r.tag("junk_identifier", hit)
        em, hit = corrupt.blank(rng, em, missing.get("email", 0.0))
        cols["email"] = em
    if "phone" in fields:
        num, recycled = phone_at(w, persons, t)
        ph = _phone_format(num, channel)
        r.tag("recycled_phone", recycled)
        ph, hit = corrupt.replace_with(rng, ph, w.params["phones"]["junk_share"], vocab.JUNK_PHONES)
        r.tag("junk_identifier", hit)
        ph, _ = corrupt.blank(rng, ph, missing.get("phone", 0.0))
        cols["phone"] = ph
    if "postcode" in fields:
        arow, moved = address_at(w, w.p_hh[persons], t)
        r.tag("moved", moved)
        a = w.addr[arow]
        keep = (
            ["postcode"]
            if "street" not in fields
            else ["street", "house_number", "postcode", "city", "region"]
        )
        for c in keep:
            cols[c] = a.get_column(c)
        cols["country"] = pl.repeat(w.params["world"]["country"], len(persons), eager=True)
    if "dob" in fields:
        dob, hit = corrupt.date_errors(
            rng, w.p_dob[persons], swap_rate=n["date_swap"], year_rate=n["date_year"]
        )
        r.tag("date_error", hit)
        dob, _ = corrupt.blank(rng, dob, missing.get("dob", 0.0))
        cols["dob"] = dob
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
    cols["customer_no"] = _ids("C", nums, 9)
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
        "store_id": _ids("S", store, 6),
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
    h_starts, h_counts = _group(w.p_hh[acc], w.n_households)
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
    ua = _ua_table().gather(w.d_os[d].astype(np.int64) * len(vocab.BROWSERS) + w.b_browser[b])
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


def _group(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(keys, minlength=n_groups)
    return np.concatenate(([0], np.cumsum(counts)[:-1])), counts


def _ua_table() -> pl.Series:
    """User agents indexed by os * len(BROWSERS) + browser."""
    out = []
    for os_name in vocab.OSES:
        for br in vocab.BROWSERS:
            out.append(vocab.user_agent(os_name, br))
    return pl.Series(out, dtype=pl.String)


def render_first_party(
    rng: np.random.Generator, w: World, nets: Networks, sources: list[str]
) -> list[Rendered]:
    """Render the requested first-party sources in canonical order."""
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
            out.append(render_logins(rng, w, nets))
    return out


__all__ = ["RECORD_SCHEMA", "Rendered", "render_first_party"]
