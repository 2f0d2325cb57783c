"""Households and persons: sizes, ages, sex, birth dates, names and name changes,
offices, cookie-deletion classes, customer flags and favourite domains.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from bench.data.datagen import vocab
from bench.data.datagen._util import INF, categorical, population_count, prob_in_horizon
from bench.data.datagen.world.state import World


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
    """Households, persons (names, ages, dob), name changes, offices, customer flags.

    The steps draw from ``rng`` in this fixed order; reordering them changes the data.
    """
    p = w.params
    _households(rng, w)
    _ages_and_sex(rng, w)
    _person_names(rng, w)
    _offices(rng, w)
    # Cookie-deletion class (never / regular / serial) per person.
    scope = p["cookies"]["scope"]
    w.p_cookie_class = categorical(rng, w.n_persons, p["cookies"][f"{scope}_class_shares"])
    _customers(rng, w)
    _favourite_domains(rng, w)


def _households(rng: np.random.Generator, w: World) -> None:
    """Household sizes adding up to exactly ``world.persons``; each person's rank in it."""
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


def _ages_and_sex(rng: np.random.Generator, w: World) -> None:
    """Ages (head 18-85; partner near the head; further members children or adult kids),
    sex and date of birth.
    """
    n = w.n_persons
    head_age = rng.integers(18, 86, w.n_households)
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


def _person_names(rng: np.random.Generator, w: World) -> None:
    """Given, middle and family names by household culture; later name changes."""
    p = w.params
    n, n_h, sex = w.n_persons, w.n_households, w.p_sex
    partner = w.p_rank == 1
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


def _offices(rng: np.random.Generator, w: World) -> None:
    """Offices of the population, sizes log-uniform in the configured range; adults join one.

    The offices are drawn for the population (``networks.sample_share``), and sampled
    employees join them in proportion to size: an office of 2,000 holds about
    2,000 x sample share sampled persons, whatever ``world.persons``.
    """
    p = w.params["networks"]
    n = w.n_persons
    lo, hi = p["office_size"]
    employed = w.p_adult & (w.p_age < 67) & (rng.random(n) < p["office_share"])
    n_emp = int(employed.sum())
    if n_emp:
        mean_size = (hi - lo) / max(np.log(hi / max(lo, 1)), 1e-9) if hi > lo else max(lo, 1)
        # At least one office when anyone is employed (not a scaling floor).
        n_off = max(1, round(population_count(n_emp, p["sample_share"]) / mean_size))
        osz = np.exp(rng.uniform(np.log(max(lo, 1)), np.log(max(hi, 1)), n_off))
        cdf = np.cumsum(osz / osz.sum())
        cdf[-1] = 1.0
        office = np.searchsorted(cdf, rng.random(n_emp), side="right")
    else:
        n_off, office = 0, np.empty(0, np.int64)
    w.p_office = np.full(n, -1, np.int64)
    w.p_office[employed] = office
    w.n_offices = n_off
    e_lo, e_hi = p["office_egress_ips"]
    w.office_egress = rng.integers(e_lo, e_hi + 1, max(n_off, 1))
    w.office_ip_start = np.concatenate(([0], np.cumsum(w.office_egress)[:-1]))


def _customers(rng: np.random.Generator, w: World) -> None:
    """Customer flags: the first-party reach (CRM, loyalty, web account, in-store)."""
    c = w.params["customers"]
    n = w.n_persons
    cust = w.p_adult & (rng.random(n) < c["reach"])
    # Every customer has a CRM or loyalty record: loyalty-only customers fill the gap.
    crm = cust & (rng.random(n) < c["crm_share"])
    loyal = cust & ((rng.random(n) < c["loyalty_share"]) | ~crm)
    w.p_customer, w.p_crm, w.p_loyalty = cust, crm, loyal
    w.p_account = cust & (rng.random(n) < c["web_account_share"])
    w.p_shopper = w.p_adult & ((rng.random(n) < c["pos_shopper_share"]) | loyal)


def _favourite_domains(rng: np.random.Generator, w: World) -> None:
    """Each person's favourite domains, from the long tail so they carry identity."""
    n = w.n_persons
    dom_n = int(w.params["events"]["domains"])
    k = int(w.params["events"]["favourite_domains"])
    # Rank 50+ when the catalogue is that large: popular domains say little about a person.
    lo_rank = min(50, dom_n - 1)
    w.p_favourites = rng.integers(lo_rank, dom_n, (n, k)) if k else np.empty((n, 0), np.int64)


def family_at(w: World, persons: np.ndarray, t: np.ndarray) -> pl.Series:
    """Family name of persons at times ``t`` (after a name change: the new one)."""
    after = t >= w.p_name_change_t[persons]
    return pl.select(
        pl.when(pl.Series(after))
        .then(w.p_family_new.gather(persons))
        .otherwise(w.p_family.gather(persons))
    ).to_series()
