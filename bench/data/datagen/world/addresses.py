"""Addresses: cities, postcodes and streets; each household's address and optional move."""

from __future__ import annotations

import numpy as np
import polars as pl

from bench.data.datagen import vocab
from bench.data.datagen._util import (
    INF,
    population_count,
    prob_in_horizon,
    splitmix64,
    zipf_cdf,
)
from bench.data.datagen.world.state import World


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
    w.hh_ip_rank = _population_ranks(rng, w.hh_daily_ip, p["networks"]["sample_share"])


def _population_ranks(rng: np.random.Generator, daily: np.ndarray, share: float) -> np.ndarray:
    """Each household's rank among the population's households of its renumbering class.

    The per-lease bijection of :mod:`bench.data.datagen.network` works on ranks; the
    sampled households take one rank in each stretch of ``1 / share`` population ranks,
    so they spread over the whole pool and never share a rank.
    """
    rank = np.zeros(len(daily), np.int64)
    u = rng.random(len(daily))
    for flag in (True, False):  # the two renumbering classes
        m = np.flatnonzero(daily == flag)
        n_pop = population_count(len(m), share)
        rank[m] = np.floor((np.arange(len(m)) + u[m]) * (n_pop / max(len(m), 1))).astype(np.int64)
    return rank


def address_at(w: World, hh: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Address row of households at times ``t`` and whether the household ever moves."""
    moved = w.hh_addr_new[hh] >= 0
    after = t >= w.hh_move_t[hh]
    return np.where(after & moved, w.hh_addr_new[hh], w.hh_addr[hh]), moved
