"""Networks and IP leases as pure functions of (network, time): nothing is materialised.

Every network is sized to the **population** the sample is drawn from (the world's
persons are a ``networks.sample_share`` share of it), so the sampled persons that meet
on one IP are the real density times the sampling share, whatever ``world.persons``:

- home networks serve the population's households: a small share renumber daily, the
  rest every ``home_renumber_days`` days with staggered phases (one group of households
  per day of the cycle, each group its own slice of the pool). At any moment the lease
  is a bijection from households onto a pool (no two households hold one address at
  once), and it changes per lease epoch, so an address passes from household to
  household over time; sampled households hold population ranks spread over the pool;
- mobile carriers put ``cgnat_subscribers_per_ip`` of the population's mobile devices
  behind each public address; a session takes any address of the pool;
- offices are drawn with their sizes for the population (:mod:`.world.population`) and
  hold 1-4 static egress addresses;
- hotspots: the population's daily public-wifi users over ``hotspot_users_per_day``.

The kinds live in disjoint address ranges so ``ip_stats.is_cellular`` and
``truth/ips.kind`` follow from the address.
"""

from __future__ import annotations

import numpy as np

from bench.data.datagen import vocab
from bench.data.datagen._util import population_count, splitmix64
from bench.data.datagen.world import World

KINDS = ("home", "office", "cellular", "public_wifi")
HOME_DAILY_BASE = 24 << 24
HOME_CYCLE_BASE = 64 << 24
OFFICE_BASE = 12 << 24
CELL_BASE = (172 << 24) | (56 << 16)
WIFI_BASE = 98 << 24
_SPAN = 1 << 24
#: Address range sizes: the home pools serve whole populations (up to ~670M persons).
HOME_DAILY_SPAN = 1 << 25
HOME_CYCLE_SPAN = 1 << 28


def _next_prime(n: int) -> int:
    """Smallest prime >= n (trial division: called a handful of times per dataset)."""
    n = max(n, 2)
    while True:
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            return n
        n += 1


class Networks:
    """IP lookups for one world; all methods are vectorised over numpy arrays.

    Attributes ``n_daily_pop``, ``n_cycle_pop`` (population households per renumbering
    class), ``n_cell`` and ``n_wifi`` (population-sized pools) and ``pool_ips`` (addresses
    per kind in the population) size the networks.
    """

    def __init__(self, w: World) -> None:
        p = w.params["networks"]
        f = float(p["sample_share"])
        self.w = w
        self.sample_share = f
        n_daily = int(w.hh_daily_ip.sum())
        self.n_daily_pop = population_count(n_daily, f)
        self.n_cycle_pop = population_count(w.n_households - n_daily, f)
        self.p_daily = _next_prime(self.n_daily_pop + 1)
        self.cycle_days = max(int(p["home_renumber_days"]), 1)
        # One slice of the cycle pool per phase group (renumbering on a day of the cycle).
        self.p_group = _next_prime(-(-self.n_cycle_pop // self.cycle_days) + 1)
        mobile = np.isin(w.d_type, [vocab.DEVICE_TYPES.index(t) for t in ("phone", "tablet")])
        n_mobile = population_count(int(mobile.sum()), f)
        self.n_cell = max(1, round(n_mobile / max(int(p["cgnat_subscribers_per_ip"]), 1)))
        # Hotspots: the population's persons on public wifi on a day (one session-share of
        # them, assumption on daily reach) over the users a hotspot serves per day.
        daily_users = population_count(w.n_persons, f) * p["public_wifi_session_share"]
        self.n_wifi = max(1, round(daily_users / max(int(p["hotspot_users_per_day"]), 1)))
        self.pool_ips = {
            "home": self.n_daily_pop + self.n_cycle_pop,
            "office": int(w.office_egress[: w.n_offices].sum()),
            "cellular": self.n_cell,
            "public_wifi": self.n_wifi,
        }
        self.salt = np.uint64(w.salt)
        for name, n, span in (
            ("daily home", self.p_daily, HOME_DAILY_SPAN),
            ("cycle home", self.p_group * self.cycle_days, HOME_CYCLE_SPAN),
            ("office", self.pool_ips["office"], _SPAN),
            ("cellular", self.n_cell, _SPAN),
            ("public wifi", self.n_wifi, _SPAN),
        ):
            if n >= span:
                msg = (
                    f"networks: the {name} pool ({n} addresses) exceeds its address range "
                    f"({span}); raise networks.sample_share"
                )
                raise ValueError(msg)

    def _affine(self, rank: np.ndarray, epoch: np.ndarray, prime: int, tag: int) -> np.ndarray:
        h = splitmix64(epoch.astype(np.uint64) * np.uint64(4099) + np.uint64(tag) + self.salt)
        a = 1 + (h % np.uint64(prime - 1)).astype(np.int64)
        b = (splitmix64(h) % np.uint64(prime)).astype(np.int64)
        return (a * rank + b) % prime

    def home(self, hh: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Public address of households' home networks on (float) days."""
        w = self.w
        daily = w.hh_daily_ip[hh]
        rank = w.hh_ip_rank[hh]
        d = np.floor(day).astype(np.int64)
        out = np.empty(len(hh), np.int64)
        if daily.any():
            out[daily] = HOME_DAILY_BASE + self._affine(rank[daily], d[daily], self.p_daily, 1)
        c = ~daily
        if c.any():
            # Phase group g renumbers on day g of the cycle; each group has its own slice.
            g = rank[c] % self.cycle_days
            ep = (d[c] + g) // self.cycle_days * self.cycle_days + g
            sub = self._affine(rank[c] // self.cycle_days, ep, self.p_group, 2)
            out[c] = HOME_CYCLE_BASE + g * self.p_group + sub
        return out

    def office(self, rng: np.random.Generator, office: np.ndarray) -> np.ndarray:
        """One of the office's static egress addresses."""
        w = self.w
        k = np.floor(rng.random(len(office)) * w.office_egress[office]).astype(np.int64)
        return OFFICE_BASE + w.office_ip_start[office] + k

    def cellular(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A carrier-grade NAT address per session (any of the carrier's pool)."""
        return CELL_BASE + rng.integers(0, self.n_cell, n)

    def wifi(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A public hotspot's address per session."""
        return WIFI_BASE + rng.integers(0, self.n_wifi, n)


def kind_of(ip: np.ndarray) -> np.ndarray:
    """Index into :data:`KINDS` of each address, from its range."""
    ip = np.asarray(ip, np.int64)
    out = np.zeros(len(ip), np.int8)
    out[(ip >= OFFICE_BASE) & (ip < OFFICE_BASE + _SPAN)] = 1
    out[(ip >= CELL_BASE) & (ip < CELL_BASE + _SPAN)] = 2
    out[(ip >= WIFI_BASE) & (ip < WIFI_BASE + _SPAN)] = 3
    return out
