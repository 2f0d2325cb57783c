"""The latent world: households, persons, addresses, emails, phones, devices, cookies.

Everything is a column array indexed by entity number; time is float days since the
recipe's start date, within ``[0, horizon]``. Each function takes the generator ``rng``
explicitly and draws in a fixed order, so a seed fixes the world.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bench.data.datagen import vocab
from bench.data.datagen._util import (
    INF,
    categorical,
    group_offsets,
    pick_in_group,
    prob_in_horizon,
    splitmix64,
    zipf_cdf,
)

log = logging.getLogger(__name__)

DT = {name: i for i, name in enumerate(vocab.DEVICE_TYPES)}
OS = {name: i for i, name in enumerate(vocab.OSES)}
BR = {name: i for i, name in enumerate(vocab.BROWSERS)}


@dataclass
class World:
    """Column arrays of every latent entity (see module docstring)."""

    params: dict[str, Any]
    horizon: float
    start: dt.date
    # households
    hh_size: np.ndarray = field(default_factory=lambda: np.empty(0))
    hh_family_first: np.ndarray = field(default_factory=lambda: np.empty(0))
    hh_addr: np.ndarray = field(default_factory=lambda: np.empty(0))  # address before move
    hh_addr_new: np.ndarray = field(default_factory=lambda: np.empty(0))  # -1: no move
    hh_move_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    hh_city: np.ndarray = field(default_factory=lambda: np.empty(0))
    hh_daily_ip: np.ndarray = field(default_factory=lambda: np.empty(0))
    hh_ip_rank: np.ndarray = field(default_factory=lambda: np.empty(0))
    hh_shared_email: np.ndarray = field(default_factory=lambda: np.empty(0))  # email slot or -1
    # persons
    p_hh: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_rank: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_age: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_adult: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_sex: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_dob: np.ndarray = field(default_factory=lambda: np.empty(0))  # days since 1970
    p_given: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    p_middle: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    p_family: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    p_family_new: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    p_name_change_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_office: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_cookie_class: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_favourites: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    # addresses
    addr: pl.DataFrame = field(default_factory=pl.DataFrame)
    # emails: one row per (person, slot) plus household-shared rows (e_person = -1)
    e_person: np.ndarray = field(default_factory=lambda: np.empty(0))
    e_hh: np.ndarray = field(default_factory=lambda: np.empty(0))
    e_slot: np.ndarray = field(default_factory=lambda: np.empty(0))
    e_old: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    e_new: pl.Series = field(default_factory=lambda: pl.Series([], dtype=pl.String))
    e_switch: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_email_start: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_email_count: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_work_slot: np.ndarray = field(default_factory=lambda: np.empty(0))
    # phones: one row per mobile line of a person
    ph_person: np.ndarray = field(default_factory=lambda: np.empty(0))
    ph_old: np.ndarray = field(default_factory=lambda: np.empty(0))
    ph_new: np.ndarray = field(default_factory=lambda: np.empty(0))  # -1: no churn
    ph_switch: np.ndarray = field(default_factory=lambda: np.empty(0))
    ph_old_recycled: np.ndarray = field(
        default_factory=lambda: np.empty(0)
    )  # old number reused later
    ph_new_recycled: np.ndarray = field(
        default_factory=lambda: np.empty(0)
    )  # new number was someone's
    p_phone: np.ndarray = field(default_factory=lambda: np.empty(0))  # phone row or -1
    # devices
    d_person: np.ndarray = field(default_factory=lambda: np.empty(0))
    d_hh: np.ndarray = field(default_factory=lambda: np.empty(0))
    d_type: np.ndarray = field(default_factory=lambda: np.empty(0))
    d_os: np.ndarray = field(default_factory=lambda: np.empty(0))
    d_shared: np.ndarray = field(default_factory=lambda: np.empty(0))
    d_start: np.ndarray = field(default_factory=lambda: np.empty(0))
    # browsers
    b_device: np.ndarray = field(default_factory=lambda: np.empty(0))
    b_browser: np.ndarray = field(default_factory=lambda: np.empty(0))
    b_visit: np.ndarray = field(default_factory=lambda: np.empty(0))  # visits/day
    b_lam: np.ndarray = field(default_factory=lambda: np.empty(0))  # cookie resets/day
    b_reach: np.ndarray = field(default_factory=lambda: np.empty(0))  # carries a cookie
    cookies_materialised: bool = True
    salt: int = 0
    # cookies (sorted by browser, then start)
    c_browser: np.ndarray = field(default_factory=lambda: np.empty(0))
    c_start: np.ndarray = field(default_factory=lambda: np.empty(0))
    c_end: np.ndarray = field(default_factory=lambda: np.empty(0))
    c_itp: np.ndarray = field(default_factory=lambda: np.empty(0))  # ended or began by ITP
    # mobile ad ids (sorted by device, then start)
    m_device: np.ndarray = field(default_factory=lambda: np.empty(0))
    m_start: np.ndarray = field(default_factory=lambda: np.empty(0))
    m_end: np.ndarray = field(default_factory=lambda: np.empty(0))
    # offices and customers
    n_offices: int = 0
    office_egress: np.ndarray = field(default_factory=lambda: np.empty(0))
    office_ip_start: np.ndarray = field(default_factory=lambda: np.empty(0))
    n_cities: int = 0
    p_customer: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_crm: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_loyalty: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_account: np.ndarray = field(default_factory=lambda: np.empty(0))
    p_shopper: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def n_persons(self) -> int:
        """Number of persons."""
        return len(self.p_hh)

    @property
    def n_households(self) -> int:
        """Number of households."""
        return len(self.hh_size)


def _names(rng: np.random.Generator, table: vocab.NameTable, n: int) -> np.ndarray:
    return np.searchsorted(table.cdf, rng.random(n), side="right")


def _sample_names(
    rng: np.random.Generator, culture_ff: np.ndarray, sex: np.ndarray, *, family: bool
) -> pl.Series:
    """Names for persons by culture (and sex for given names), vectorised per group."""
    n = len(culture_ff)
    groups = (
        [(~culture_ff, vocab.family_names("en")), (culture_ff, vocab.family_names("fam_first"))]
        if family
        else [
            (~culture_ff & (sex == 0), vocab.given_names("en", "F")),
            (~culture_ff & (sex == 1), vocab.given_names("en", "M")),
            (culture_ff, vocab.given_names("fam_first", "X")),
        ]
    )
    idx = np.zeros(n, np.int64)
    words: list[str] = []
    for mask, table in groups:
        k = int(mask.sum())
        idx[mask] = len(words) + _names(rng, table, k)
        words.extend(table.names.tolist())
    return pl.Series(words, dtype=pl.String).gather(idx)


def build_population(rng: np.random.Generator, w: World) -> None:
    """Households, persons (names, ages, dob), name changes, offices, customer flags."""
    p = w.params
    n_target = int(p["world"]["persons"])
    shares = np.array(p["households"]["size_shares"])
    mean = float((shares * np.arange(1, 8)).sum())
    est = int(n_target / mean * 1.1) + 8
    sizes = categorical(rng, est, shares) + 1
    cs = np.cumsum(sizes)
    n_h = int(np.searchsorted(cs, n_target, side="left")) + 1
    sizes = sizes[:n_h].copy()
    sizes[-1] -= int(cs[n_h - 1] - n_target)  # trim the last household to hit the target
    if sizes[-1] <= 0:
        sizes = sizes[:-1]
    w.hh_size = sizes.astype(np.int32)
    n_h = len(sizes)
    n = int(sizes.sum())
    w.p_hh = np.repeat(np.arange(n_h, dtype=np.int64), sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    w.p_rank = (np.arange(n) - starts[w.p_hh]).astype(np.int32)

    # Ages: head 18-85; partner near the head; further members children or adult kids.
    head_age = rng.integers(18, 86, n_h)
    age = head_age[w.p_hh].astype(np.float64)
    partner = w.p_rank == 1
    age[partner] = np.clip(age[partner] + rng.normal(0, 4, int(partner.sum())), 18, 95)
    kids = w.p_rank >= 2
    age[kids] = np.minimum(rng.integers(0, 26, int(kids.sum())), np.maximum(age[kids] - 18, 0))
    w.p_age = age.astype(np.int32)
    w.p_adult = w.p_age >= 18
    sex = rng.integers(0, 2, n).astype(np.int8)
    # Most couples in the vocabulary's culture are mixed-sex: keeps given names plausible.
    flip = partner & (rng.random(n) < 0.9)
    sex[flip] = 1 - sex[np.maximum(np.arange(n) - 1, 0)][flip]
    w.p_sex = sex
    start_epoch = (w.start - dt.date(1970, 1, 1)).days
    w.p_dob = (start_epoch - w.p_age * 365.25 - rng.integers(0, 365, n)).astype(np.int64)

    ff_h = rng.random(n_h) < p["world"]["family_first_share"]
    w.hh_family_first = ff_h
    ff = ff_h[w.p_hh]
    w.p_given = _sample_names(rng, ff, sex, family=False)
    middle = _sample_names(rng, ff, sex, family=False)
    w.p_middle = pl.select(
        pl.when(pl.Series(ff)).then(None).otherwise(middle).alias("m")
    ).to_series()
    hh_family = _sample_names(rng, ff_h, np.zeros(n_h, np.int8), family=True)
    own_family = _sample_names(rng, ff, sex, family=True)
    # A partner keeps their own family name in 30% of couples (assumption).
    keep_own = partner & (rng.random(n) < 0.3)
    fam = hh_family.gather(w.p_hh)
    w.p_family = pl.select(pl.when(pl.Series(keep_own)).then(own_family).otherwise(fam)).to_series()
    # Name change (marriage): the new surname applies from p_name_change_t on.
    pchange = prob_in_horizon(p["noise"]["name_change_per_year"], w.horizon)
    change = w.p_adult & (rng.random(n) < pchange)
    w.p_name_change_t = np.where(change, rng.random(n) * w.horizon, INF)
    new_family = _sample_names(rng, ff, sex, family=True)
    w.p_family_new = pl.select(
        pl.when(pl.Series(change)).then(new_family).otherwise(w.p_family)
    ).to_series()

    # Offices: sizes drawn log-uniformly in the configured range; adults join one.
    lo, hi = p["networks"]["office_size"]
    employed = w.p_adult & (w.p_age < 67) & (rng.random(n) < p["networks"]["office_share"])
    n_emp = int(employed.sum())
    if n_emp:
        mean_size = (hi - lo) / max(np.log(hi / max(lo, 1)), 1e-9) if hi > lo else max(lo, 1)
        n_off = max(1, round(n_emp / mean_size))
        osz = np.exp(rng.uniform(np.log(max(lo, 1)), np.log(max(hi, 1)), n_off))
        cdf = np.cumsum(osz / osz.sum())
        cdf[-1] = 1.0
        office = np.searchsorted(cdf, rng.random(n_emp), side="right")
    else:
        n_off, office = 0, np.empty(0, np.int64)
    w.p_office = np.full(n, -1, np.int64)
    w.p_office[employed] = office
    w.n_offices = n_off
    e_lo, e_hi = p["networks"]["office_egress_ips"]
    w.office_egress = rng.integers(e_lo, e_hi + 1, max(n_off, 1))
    w.office_ip_start = np.concatenate(([0], np.cumsum(w.office_egress)[:-1]))

    # Cookie-deletion class (never / regular / serial) per person.
    scope = p["cookies"]["scope"]
    w.p_cookie_class = categorical(rng, n, p["cookies"][f"{scope}_class_shares"])

    # Customers: the first-party reach.
    c = p["customers"]
    cust = w.p_adult & (rng.random(n) < c["reach"])
    # Every customer has a CRM or loyalty record: loyalty-only customers fill the gap.
    crm = cust & (rng.random(n) < c["crm_share"])
    loyal = cust & ((rng.random(n) < c["loyalty_share"]) | ~crm)
    w.p_customer, w.p_crm, w.p_loyalty = cust, crm, loyal
    w.p_account = cust & (rng.random(n) < c["web_account_share"])
    w.p_shopper = w.p_adult & ((rng.random(n) < c["pos_shopper_share"]) | loyal)

    dom_n = int(p["events"]["domains"])
    k = int(p["events"]["favourite_domains"])
    # Favourites come from the long tail, so they carry identity (rank 50+ when possible).
    lo_rank = min(50, dom_n - 1)
    w.p_favourites = rng.integers(lo_rank, dom_n, (n, k)) if k else np.empty((n, 0), np.int64)


def build_addresses(rng: np.random.Generator, w: World) -> None:
    """Cities, postcodes, streets; each household's address and optional move."""
    p = w.params
    n_h = w.n_households
    n_c = max(3, round(n_h / 100_000 * p["households"]["cities_per_100k_households"]))
    n_c = min(n_c, 9000)
    w.n_cities = n_c
    city_cdf = zipf_cdf(n_c, 1.0)
    move_p = prob_in_horizon(p["households"]["moves_per_year"], w.horizon)
    moves = rng.random(n_h) < move_p
    n_m = int(moves.sum())
    city0 = np.searchsorted(city_cdf, rng.random(n_h), side="right")
    # Half of the movers stay in their city (assumption).
    city1 = np.where(
        rng.random(n_m) < 0.5, city0[moves], np.searchsorted(city_cdf, rng.random(n_m), "right")
    )
    city = np.concatenate((city0, city1))
    n_a = len(city)
    hh_per_city = np.bincount(city0, minlength=n_c)
    n_streets = 1 + hh_per_city // 40
    street_local = np.floor(rng.random(n_a) * n_streets[city]).astype(np.int64)
    streets = vocab.street_names()
    street_idx = (splitmix64(city * 100_003 + street_local) % np.uint64(len(streets))).astype(
        np.int64
    )
    n_zip = np.minimum(1 + hh_per_city // 2000, 49)
    zipc = 10_000 + city * (89_999 // max(n_c, 1)) + np.floor(rng.random(n_a) * n_zip[city])
    cities = vocab.city_names()
    city_perm = rng.permutation(len(cities))[:n_c] if n_c <= len(cities) else np.arange(n_c)
    states = np.array(vocab.STATES, dtype=object)
    w.addr = pl.DataFrame(
        {
            "street": pl.Series(streets.tolist(), dtype=pl.String).gather(street_idx),
            "house_number": pl.Series(rng.integers(1, 9_999, n_a)).cast(pl.String),
            "postcode": pl.Series(zipc.astype(np.int64)).cast(pl.String).str.zfill(5),
            "city": pl.Series(cities.tolist(), dtype=pl.String).gather(
                city_perm[city % len(city_perm)]
            ),
            "region": pl.Series(states.tolist(), dtype=pl.String).gather(city % len(states)),
            "city_id": city,
        }
    )
    w.hh_addr = np.arange(n_h)
    w.hh_addr_new = np.full(n_h, -1, np.int64)
    w.hh_addr_new[moves] = n_h + np.arange(n_m)
    w.hh_move_t = np.where(moves, rng.random(n_h) * w.horizon, INF)
    w.hh_city = city0
    w.hh_daily_ip = rng.random(n_h) < p["networks"]["home_daily_renumber_share"]
    # Rank within the renumbering class: the per-lease bijection works on ranks.
    w.hh_ip_rank = np.zeros(n_h, np.int64)
    for flag in (True, False):
        m = w.hh_daily_ip == flag
        w.hh_ip_rank[m] = np.arange(int(m.sum()))


def _clean_lower(names: pl.Series) -> pl.Series:
    """Lower-case letters only, computed once per distinct name (names repeat a lot)."""
    uniq = names.unique(maintain_order=True)
    clean = uniq.str.to_lowercase().str.replace_all(r"[^a-z]", "")
    return names.replace_strict(uniq, clean, return_dtype=pl.String)


#: E-mail local-part patterns (assumption): (first part, separator, second part, suffix).
_PATTERNS = (
    ("g", ".", "f", ""),
    ("g", "", "f", ""),
    ("g0", "", "f", ""),
    ("f", "", "g0", "yy"),
    ("g", "", "", "num"),
    ("g", "_", "f", "yy"),
    ("f", ".", "g", "num"),
)
_PATTERN_SHARES = (0.25, 0.15, 0.15, 0.1, 0.15, 0.1, 0.1)


def _local_parts(rng: np.random.Generator, given: pl.Series, family: pl.Series) -> pl.Series:
    """E-mail local parts from name patterns; each row is built once, per pattern group."""
    n = len(given)
    pat = categorical(rng, n, _PATTERN_SHARES)
    num = rng.integers(1, 9999, n)
    yy = rng.integers(50, 100, n)
    g = _clean_lower(given)
    f = _clean_lower(family)
    order = np.argsort(pat, kind="stable")
    bounds = np.searchsorted(pat[order], np.arange(len(_PATTERNS) + 1))
    parts = []
    for k, (a, sep, b, suf) in enumerate(_PATTERNS):
        rows = order[bounds[k] : bounds[k + 1]]
        cols = {
            "g": g.gather(rows),
            "f": f.gather(rows),
            "num": pl.Series(num[rows]).cast(pl.String),
            "yy": pl.Series(yy[rows]).cast(pl.String),
        }
        cols["g0"] = cols["g"].str.slice(0, 1)
        pieces = [cols[a], pl.lit(sep)] + ([cols[b]] if b else []) + ([cols[suf]] if suf else [])
        parts.append(pl.select(pl.concat_str(pieces).alias("local")).to_series())
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    return pl.concat(parts).gather(inverse)


def _email_values(
    rng: np.random.Generator, given: pl.Series, family: pl.Series, work_domain: pl.Series
) -> pl.Series:
    """Full addresses: personal patterns at free-mail domains, or at the work domain."""
    n = len(given)
    local = _local_parts(rng, given, family)
    doms = np.array([d for d, _ in vocab.EMAIL_DOMAINS], dtype=object)
    free = pl.Series(doms.tolist(), dtype=pl.String).gather(
        categorical(rng, n, [s for _, s in vocab.EMAIL_DOMAINS])
    )
    domain = pl.select(pl.coalesce(work_domain, free)).to_series()
    return pl.select(pl.concat_str([local, pl.lit("@"), domain])).to_series()


def _make_unique(values: pl.Series, salt: np.ndarray) -> pl.Series:
    """Append a number to the local part of repeated addresses so each value has one owner.

    Repeats are found by sorting 64-bit hashes (a hash collision only adds a harmless
    suffix); the first occurrence keeps its plain value.
    """
    v = values
    for _ in range(4):
        h = v.hash(seed=7).to_numpy()
        order = np.argsort(h, kind="stable")
        hs = h[order]
        dup_sorted = np.concatenate(([False], hs[1:] == hs[:-1]))
        idx = np.sort(order[dup_sorted])
        if len(idx) == 0:
            break
        sub = v.gather(idx)
        tag = pl.Series(salt[idx]).cast(pl.String)
        fixed = pl.select(
            pl.concat_str(
                [sub.str.split_exact("@", 1).struct.field("field_0"), pl.lit("."), tag,
                 pl.lit("@"), sub.str.split_exact("@", 1).struct.field("field_1")]
            )
        ).to_series()  # fmt: skip
        v = v.clone().scatter(idx, fixed)
        salt = salt * 7 + 3
    return v


def build_emails(rng: np.random.Generator, w: World) -> None:
    """Per-person address slots (primary, work, others), churn, shared family addresses."""
    p = w.params["emails"]
    adults = np.flatnonzero(w.p_adult)
    counts = np.zeros(w.n_persons, np.int64)
    counts[adults] = categorical(rng, len(adults), p["count_shares"]) + 1
    person = np.repeat(np.arange(w.n_persons), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(len(person)) - starts[person]
    w.p_email_start, w.p_email_count = starts, counts
    # The work address sits in slot 1 for office workers with >= 2 addresses.
    is_work = (slot == 1) & (w.p_office[person] >= 0)
    w.p_work_slot = np.where((counts >= 2) & (w.p_office >= 0), starts + 1, -1)
    given = w.p_given.gather(person)
    family = w.p_family.gather(person)
    wd = pl.Series(w.p_office[person]).cast(pl.String)
    work_domain = pl.select(
        pl.when(pl.Series(is_work)).then(pl.lit("corp") + wd + ".example").otherwise(None)
    ).to_series()
    old = _email_values(rng, given, family, work_domain)

    # Churn: a person abandons one address at a random time and starts a new one; a name
    # change replaces the primary address half of the time (correlated noise).
    n_e = len(person)
    pchurn = prob_in_horizon(p["churn_per_year"], w.horizon)
    churner = rng.random(w.n_persons) < pchurn
    churn_slot = starts + np.floor(rng.random(w.n_persons) * np.maximum(counts, 1)).astype(np.int64)
    switch = np.full(n_e, INF)
    sel = churner & (counts > 0)
    switch[churn_slot[sel]] = rng.random(int(sel.sum())) * w.horizon
    renamed = np.isfinite(w.p_name_change_t) & (counts > 0) & (rng.random(w.n_persons) < 0.5)
    switch[starts[renamed]] = w.p_name_change_t[renamed]
    fin = np.flatnonzero(np.isfinite(switch))
    # Replacement addresses only for the slots that churn (a third of them at most).
    new = _email_values(
        rng, given.gather(fin), w.p_family_new.gather(person[fin]), work_domain.gather(fin)
    )

    # Shared family addresses: one per selected multi-person household.
    n_h = w.n_households
    adults_per_hh = np.bincount(w.p_hh[w.p_adult], minlength=n_h)
    shared = (adults_per_hh >= 2) & (rng.random(n_h) < w.params["households"]["shared_email_share"])
    sh_h = np.flatnonzero(shared)
    head = np.searchsorted(w.p_hh, sh_h)  # persons are grouped by household: first = head
    sh_local = pl.Series(["the", "family.", "our", ""], dtype=pl.String).gather(
        rng.integers(0, 4, len(sh_h))
    )
    sh_fam = w.p_family.gather(head).str.to_lowercase().str.replace_all(r"[^a-z]", "")
    doms = np.array([d for d, _ in vocab.EMAIL_DOMAINS], dtype=object)
    sh_dom = pl.Series(doms.tolist(), dtype=pl.String).gather(
        categorical(rng, len(sh_h), [s for _, s in vocab.EMAIL_DOMAINS])
    )
    sh_vals = pl.select(
        pl.concat_str([sh_local, sh_fam, pl.lit("s@"), sh_dom]).alias("v")
    ).to_series()

    all_vals = pl.concat([old, new, sh_vals])
    uniq = _make_unique(all_vals, np.arange(len(all_vals)) + 11)
    w.e_old = uniq.slice(0, n_e)
    w.e_new = pl.repeat(None, n_e, dtype=pl.String, eager=True).scatter(
        fin, uniq.slice(n_e, len(fin))
    )
    w.e_switch = switch
    w.e_person = person
    w.e_slot = slot
    w.e_hh = w.p_hh[person]
    # Household-shared addresses are appended as rows with e_person = -1.
    n_sh = len(sh_h)
    w.e_person = np.concatenate((person, np.full(n_sh, -1)))
    w.e_hh = np.concatenate((w.e_hh, sh_h))
    w.e_slot = np.concatenate((slot, np.full(n_sh, -1)))
    w.e_old = pl.concat([w.e_old, uniq.slice(n_e + len(fin), n_sh)])
    w.e_new = pl.concat([w.e_new, pl.repeat(None, n_sh, dtype=pl.String, eager=True)])
    w.e_switch = np.concatenate((switch, np.full(n_sh, INF)))
    w.hh_shared_email = np.full(n_h, -1, np.int64)
    w.hh_shared_email[sh_h] = n_e + np.arange(n_sh)


def _phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct NANP-like 10-digit numbers as int64."""
    out = np.empty(0, np.int64)
    while len(out) < n:
        k = int((n - len(out)) * 1.1) + 16
        npa = rng.integers(201, 990, k)
        nxx = rng.integers(200, 1000, k)
        line = rng.integers(0, 10_000, k)
        out = np.concatenate((out, npa * 10_000_000 + nxx * 10_000 + line))
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)]
    return out[:n]


def build_phones(rng: np.random.Generator, w: World) -> None:
    """Mobile lines with churn; dropped numbers recycled to a later churner after a gap."""
    p = w.params["phones"]
    has = w.p_adult & (rng.random(w.n_persons) < p["mobile_share"])
    person = np.flatnonzero(has)
    n = len(person)
    pchurn = prob_in_horizon(p["churn_per_year"], w.horizon)
    churn = rng.random(n) < pchurn
    switch = np.where(churn, rng.random(n) * w.horizon, INF)
    nums = _phone_numbers(rng, n + int(churn.sum()))
    old = nums[:n]
    new = np.full(n, -1, np.int64)
    new[churn] = nums[n:]
    old_recycled = np.zeros(n, bool)
    new_recycled = np.zeros(n, bool)
    # Recycling: a dropped number becomes available after the ageing gap; it goes to a
    # random line that churns later (if any), replacing that line's fresh number.
    g_lo, g_hi = p["recycle_gap_days"]
    drop = np.flatnonzero(churn)
    avail = switch[drop] + rng.uniform(g_lo, g_hi, len(drop))
    cand = (avail < w.horizon) & (rng.random(len(drop)) < p["recycle_share"])
    donors = drop[cand]
    avail = avail[cand]
    order = np.argsort(switch[drop], kind="stable")
    t_sorted = switch[drop][order]
    pos = np.searchsorted(t_sorted, avail, side="left")
    ok = pos < len(t_sorted)
    span = len(t_sorted) - pos
    pick = pos + np.floor(rng.random(len(donors)) * np.maximum(span, 1)).astype(np.int64)
    donors, pick = donors[ok], pick[ok]
    recips = drop[order[pick]] if len(pick) else np.empty(0, np.int64)
    # One number per recipient, never to the donor's own household.
    keep = w.p_hh[person[recips]] != w.p_hh[person[donors]]
    donors, recips = donors[keep], recips[keep]
    _, first = np.unique(recips, return_index=True)
    first = np.sort(first)
    donors, recips = donors[first], recips[first]
    new[recips] = old[donors]
    old_recycled[donors] = True
    new_recycled[recips] = True
    w.ph_person, w.ph_old, w.ph_new, w.ph_switch = person, old, new, switch
    w.ph_old_recycled, w.ph_new_recycled = old_recycled, new_recycled
    w.p_phone = np.full(w.n_persons, -1, np.int64)
    w.p_phone[person] = np.arange(n)


def build_devices(rng: np.random.Generator, w: World) -> None:
    """Personal devices (1 + Poisson, capped), household-shared devices, browsers."""
    p = w.params["devices"]
    n = w.n_persons
    teen = (w.p_age >= 13) & ~w.p_adult
    n_dev = np.zeros(n, np.int64)
    extra = rng.poisson(p["extra_mean"], n)
    n_dev[w.p_adult] = np.minimum(1 + extra[w.p_adult], p["max_per_adult"])
    n_dev[teen] = 1 + (rng.random(int(teen.sum())) < 0.5)  # assumption: teens 1-2 devices
    owner = np.repeat(np.arange(n), n_dev)
    starts = np.concatenate(([0], np.cumsum(n_dev)[:-1]))
    k = np.arange(len(owner)) - starts[owner]
    # First device: phone (95%) else laptop; further devices laptop/desktop/tablet.
    first_type = np.where(rng.random(len(owner)) < 0.95, DT["phone"], DT["laptop"])
    extra_type = np.array([DT["laptop"], DT["desktop"], DT["tablet"]])[
        categorical(rng, len(owner), [0.5, 0.2, 0.3])
    ]
    dtype = np.where(k == 0, first_type, extra_type)

    # Shared devices (family desktop, TV, tablet) in multi-person households.
    lo, hi = w.params["households"]["shared_devices"]
    multi = np.flatnonzero(w.hh_size >= 2)
    n_sh = rng.integers(lo, hi + 1, len(multi)) if hi >= lo else np.zeros(len(multi), np.int64)
    sh_hh = np.repeat(multi, n_sh)
    sh_type = np.array([DT["tv"], DT["desktop"], DT["tablet"]])[
        categorical(rng, len(sh_hh), [0.4, 0.3, 0.3])
    ]
    sh_owner = np.searchsorted(w.p_hh, sh_hh)  # the head is the truth owner
    w.d_person = np.concatenate((owner, sh_owner))
    w.d_hh = w.p_hh[w.d_person]
    w.d_type = np.concatenate((dtype, sh_type)).astype(np.int8)
    w.d_shared = np.concatenate((np.zeros(len(owner), bool), np.ones(len(sh_hh), bool)))
    n_d = len(w.d_person)
    # 85% of devices exist at the start; the rest are bought during the horizon.
    w.d_start = np.where(rng.random(n_d) < 0.85, 0.0, rng.random(n_d) * w.horizon)
    os_idx = np.zeros(n_d, np.int8)
    for t_name, mix in vocab.OS_MIX.items():
        m = w.d_type == DT[t_name]
        names = list(mix)
        draw = categorical(rng, int(m.sum()), list(mix.values()))
        os_idx[m] = np.array([OS[x] for x in names])[draw]
    w.d_os = os_idx

    # Browsers: one per device (TV: the app), a second one on 20% of computers.
    second = np.isin(w.d_type, [DT["laptop"], DT["desktop"]]) & (
        rng.random(n_d) < p["second_browser_share"]
    )
    nb = 1 + second.astype(np.int64)
    b_dev = np.repeat(np.arange(n_d), nb)
    bst = np.concatenate(([0], np.cumsum(nb)[:-1]))
    b_k = np.arange(len(b_dev)) - bst[b_dev]
    b_br = np.zeros(len(b_dev), np.int8)
    for os_name, mix in vocab.BROWSER_MIX.items():
        m = w.d_os[b_dev] == OS[os_name]
        names = list(mix)
        draw = categorical(rng, int(m.sum()), list(mix.values()))
        # The second browser is the next one in the OS's list (never the same twice).
        draw = (draw + b_k[m]) % len(names)
        b_br[m] = np.array([BR[x] for x in names])[draw]
    keep = b_br != BR["App"]  # TVs have no web browser: no cookies
    w.b_device, w.b_browser = b_dev[keep], b_br[keep]
    active = np.array([vocab.ACTIVE_DAY[t] for t in vocab.DEVICE_TYPES])
    # Visits/day to the tagged sites: device activity x a lognormal personal factor
    # (assumption), scaled down for a single site's first-party cookie.
    scope_f = 0.25 if w.params["cookies"]["scope"] == "first_party" else 1.0
    nbk = len(w.b_device)
    w.b_visit = active[w.d_type[w.b_device]] * rng.lognormal(-0.28, 0.75, nbk) * scope_f


def build_cookies(rng: np.random.Generator, w: World, *, materialise: bool = True) -> None:
    """Cookie lifetimes per browser: deletion by class, ITP caps, Poisson renewals.

    With ``materialise=False`` only the per-browser rates are kept: first-party-only
    scenarios need cookie ids at a few order times, which :func:`cookie_keys_lazy`
    draws from the same renewal process without simulating every cookie.
    """
    p = w.params["cookies"]
    scope = p["scope"]
    nb = len(w.b_device)
    reach = rng.random(nb) < p["browser_reach"]
    dev = w.b_device
    owner = w.d_person[dev]
    cls = w.p_cookie_class[owner]
    per_month = np.array(p[f"{scope}_deletes_per_month"])
    lam_del = per_month[cls] / 30.0
    # Regular deleters delete 1-4 times a month (comScore): spread their rate uniformly.
    reg = cls == 1
    lam_del[reg] = rng.uniform(1.0, 4.0, int(reg.sum())) / 30.0 * (per_month[1] / 2.5)
    lam_itp = np.zeros(nb)
    if p["itp_mode"] != "off":
        safari = w.b_browser == BR["Safari"]
        v = w.b_visit[safari]
        # A cookie dies when the gap to the next visit exceeds the cap: rate v*exp(-d*v).
        lam_itp[safari] = v * np.exp(-p["itp_days"] * v)
    t0 = w.d_start[dev]
    length = w.horizon - t0
    lam = lam_del + lam_itp
    w.b_lam, w.b_reach = lam, reach
    w.cookies_materialised = materialise
    if not materialise:
        return
    n_resets = np.minimum(rng.poisson(lam * length), 2000) * reach
    n_cookies = (n_resets + 1) * reach
    nc = int(n_cookies.sum())
    b = np.repeat(np.arange(nb), n_cookies)
    # Renewal times: uniform order statistics of the resets within the browser's life.
    rb = np.repeat(np.arange(nb), n_resets)
    span = w.horizon + 1.0
    key = np.sort(rb * span + t0[rb] + rng.random(len(rb)) * length[rb])
    resets = key - rb * span
    starts = np.concatenate(([0], np.cumsum(n_cookies)[:-1]))
    k = np.arange(nc) - starts[b]  # index of the cookie within its browser
    # Reset j (0-based) ends cookie j and starts cookie j+1.
    rst = np.concatenate(([0], np.cumsum(n_resets)[:-1]))
    c_start = np.where(k == 0, t0[b], 0.0)
    nz = k > 0
    c_start[nz] = resets[rst[b[nz]] + k[nz] - 1]
    c_end = np.full(nc, w.horizon)
    last = k == n_cookies[b] - 1
    c_end[~last] = resets[rst[b[~last]] + k[~last]]
    # Attribute each reset to ITP or to the user in proportion to the two rates.
    p_itp = np.divide(lam_itp, lam, out=np.zeros(nb), where=lam > 0)
    itp_reset = rng.random(len(resets)) < p_itp[rb]
    c_itp = np.zeros(nc, bool)
    c_itp[~last] |= itp_reset[rst[b[~last]] + k[~last]]
    c_itp[nz] |= itp_reset[rst[b[nz]] + k[nz] - 1]
    w.c_browser, w.c_start, w.c_end, w.c_itp = b, c_start, c_end, c_itp


def build_maids(rng: np.random.Generator, w: World) -> None:
    """Mobile advertising ids on phones, tablets and TVs (opt-in), with rare resets."""
    p = w.params["devices"]
    mobile = np.isin(w.d_type, [DT["phone"], DT["tablet"], DT["tv"]])
    apple = np.isin(w.d_os, [OS["iOS"], OS["iPadOS"]])
    optin = np.where(apple, p["maid_optin_ios"], p["maid_optin_android"])
    has = mobile & (rng.random(len(w.d_type)) < optin)
    dev = np.flatnonzero(has)
    t0 = w.d_start[dev]
    length = w.horizon - t0
    n_res = rng.poisson(p["maid_reset_per_year"] / 365.0 * length)
    n_m = n_res + 1
    d = np.repeat(np.arange(len(dev)), n_m)
    starts = np.concatenate(([0], np.cumsum(n_m)[:-1]))
    k = np.arange(len(d)) - starts[d]
    # Resets split the device's life evenly (few resets: their exact times matter little).
    frac0 = k / n_m[d]
    frac1 = (k + 1) / n_m[d]
    w.m_device = dev[d]
    w.m_start = t0[d] + frac0 * length[d]
    w.m_end = t0[d] + frac1 * length[d]


def build_world(rng: np.random.Generator, params: dict[str, Any]) -> World:
    """Simulate the whole latent world for a recipe's parameters."""
    w = World(
        params=params,
        horizon=float(params["world"]["horizon_days"]),
        start=dt.date.fromisoformat(params["world"]["start_date"]),
    )
    build_population(rng, w)
    build_addresses(rng, w)
    build_emails(rng, w)
    build_phones(rng, w)
    build_devices(rng, w)
    src = params["sources"]
    w.salt = int(rng.integers(0, 2**62))
    build_cookies(rng, w, materialise="cookie" in src["anonymous"])
    if "maid" in src["anonymous"]:
        build_maids(rng, w)
    log.info(
        "world: %d persons, %d households, %d devices, %d cookies, %d maids",
        w.n_persons,
        w.n_households,
        len(w.d_person),
        len(w.c_browser),
        len(w.m_device),
    )
    return w


# --------------------------------------------------------------------------- lookups


def email_at(w: World, slot_rows: np.ndarray, t: np.ndarray) -> pl.Series:
    """The value of email rows at times ``t`` (old before the switch, new after)."""
    after = t >= w.e_switch[slot_rows]
    old = w.e_old.gather(slot_rows)
    new = w.e_new.gather(slot_rows)
    return pl.select(pl.when(pl.Series(after)).then(new).otherwise(old)).to_series()


def choose_email_rows(
    rng: np.random.Generator, w: World, persons: np.ndarray, *, shared_use: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Which address row each record uses: primary 76% / work 8% / other (recipe shares).

    Returns (email row or -1 when the person has none, uses-shared-family-address flag).
    """
    p = w.params["emails"]
    n = len(persons)
    start = w.p_email_start[persons]
    cnt = w.p_email_count[persons]
    work = w.p_work_slot[persons]
    u = rng.random(n)
    other = start + np.floor(rng.random(n) * np.maximum(cnt, 1)).astype(np.int64)
    row = np.where(u < p["use_primary"], start, other)
    use_work = (u >= p["use_primary"]) & (u < p["use_primary"] + p["use_work"]) & (work >= 0)
    row = np.where(use_work, work, row)
    row = np.where(cnt > 0, row, -1)
    shared = w.hh_shared_email[w.p_hh[persons]]
    use_shared = (shared >= 0) & w.p_adult[persons] & (rng.random(n) < shared_use)
    row = np.where(use_shared, shared, row)
    return row, use_shared


def address_at(w: World, hh: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Address row of households at times ``t`` and whether the household ever moves."""
    moved = w.hh_addr_new[hh] >= 0
    after = t >= w.hh_move_t[hh]
    return np.where(after & moved, w.hh_addr_new[hh], w.hh_addr[hh]), moved


def family_at(w: World, persons: np.ndarray, t: np.ndarray) -> pl.Series:
    """Family name of persons at times ``t`` (after a name change: the new one)."""
    after = t >= w.p_name_change_t[persons]
    return pl.select(
        pl.when(pl.Series(after))
        .then(w.p_family_new.gather(persons))
        .otherwise(w.p_family.gather(persons))
    ).to_series()


def phone_at(w: World, persons: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(number or -1, recycled-number flag) of persons' mobile lines at times ``t``."""
    row = w.p_phone[persons]
    has = row >= 0
    r = np.where(has, row, 0)
    after = (t >= w.ph_switch[r]) & (w.ph_new[r] >= 0)
    num = np.where(after, w.ph_new[r], w.ph_old[r])
    rec = np.where(after, w.ph_new_recycled[r], w.ph_old_recycled[r])
    return np.where(has, num, -1), has & rec


def browsers_by_person(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Browsers grouped by the person using them: (browser ids sorted, starts, counts)."""
    owner = w.d_person[w.b_device]
    order = np.argsort(owner, kind="stable")
    starts, counts = group_offsets(owner[order], w.n_persons)
    return order, starts, counts


def cookie_at(w: World, browsers: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Cookie row alive on ``browsers`` at times ``t`` (-1 when none)."""
    span = w.horizon + 1.0
    key = w.c_browser * span + w.c_start
    q = browsers * span + t
    i = np.searchsorted(key, q, side="right") - 1
    ok = (browsers >= 0) & (i >= 0)
    i = np.where(ok, i, 0)
    ok &= (w.c_browser[i] == browsers) & (w.c_end[i] >= t) if len(key) else ok & False
    return np.where(ok, i, -1)


def pick_browser(
    rng: np.random.Generator, w: World, persons: np.ndarray, index: tuple[np.ndarray, ...]
) -> np.ndarray:
    """A random browser of each person (-1 when the person has none)."""
    order, starts, counts = index
    j = pick_in_group(rng, starts, counts, persons)
    return np.where(j >= 0, order[np.maximum(j, 0)], -1)


def cookie_keys_lazy(
    rng: np.random.Generator, w: World, browsers: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Cookie keys (uint64, 0 = none) at times ``t`` without materialised cookies.

    Between two look-ups on one browser the number of resets is Poisson(rate x gap), the
    same law as the materialised renewal process; the key hashes (browser, cookie index).
    """
    n = len(browsers)
    out = np.zeros(n, np.uint64)
    ok = browsers >= 0
    b_safe = np.where(ok, browsers, 0)
    ok &= w.b_reach[b_safe] & (t >= w.d_start[w.b_device[b_safe]])
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return out
    order = idx[np.lexsort((t[idx], browsers[idx]))]
    b = browsers[order]
    ts = t[order]
    first = np.concatenate(([True], b[1:] != b[:-1]))
    prev = np.concatenate(([0.0], ts[:-1]))
    prev = np.where(first, w.d_start[w.b_device[b]], prev)
    inc = rng.poisson(w.b_lam[b] * np.maximum(ts - prev, 0.0))
    cum = np.cumsum(inc)
    base = np.maximum.accumulate(np.where(first, cum - inc, 0))
    k = (cum - base).astype(np.uint64)
    salt = np.uint64((w.salt & 0xFFFFFF) << 40)
    out[order] = splitmix64((b.astype(np.uint64) << np.uint64(20)) + k + salt) | np.uint64(1)
    return out
