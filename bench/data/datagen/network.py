"""Networks and IP leases as pure functions of (network, time): nothing is materialised.

Home networks renumber daily (a share of them) or on a fixed cycle; at any moment the
lease is a bijection from households onto a pool (no two households hold one address at
once), and the bijection changes per lease epoch, so an address passes from household to
household over time. Offices hold 1-4 static egress addresses; mobile carriers put
``cgnat_subscribers_per_ip`` devices behind each public address; hotspots have one each.
The kinds live in disjoint address ranges so ``ip_stats.is_cellular`` and
``truth/ips.kind`` follow from the address.
"""

from __future__ import annotations

import numpy as np

from bench.data.datagen._util import splitmix64
from bench.data.datagen.world import World

KINDS = ("home", "office", "cellular", "public_wifi")
HOME_DAILY_BASE = 24 << 24
HOME_CYCLE_BASE = 64 << 24
OFFICE_BASE = 12 << 24
CELL_BASE = (172 << 24) | (56 << 16)
WIFI_BASE = 98 << 24
_SPAN = 1 << 24


def _next_prime(n: int) -> int:
    """Smallest prime >= n (trial division: called a handful of times per dataset)."""
    n = max(n, 2)
    while True:
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            return n
        n += 1


class Networks:
    """IP lookups for one world; all methods are vectorised over numpy arrays."""

    def __init__(self, w: World) -> None:
        p = w.params["networks"]
        self.w = w
        self.n_daily = int(w.hh_daily_ip.sum())
        self.p_daily = _next_prime(self.n_daily + 1)
        self.p_cycle = _next_prime(w.n_households - self.n_daily + 1)
        self.cycle_days = max(int(p["home_renumber_days"]), 1)
        n_mobile = max(1, len(w.d_person))
        self.n_cell = max(1, n_mobile // max(int(p["cgnat_subscribers_per_ip"]), 1))
        # Hotspots: about `hotspot_users_per_day` persons per hotspot per day when 5% of
        # sessions are on public wifi (assumption on daily reach).
        share = p["public_wifi_session_share"]
        self.n_wifi = max(1, int(w.n_persons * share / max(int(p["hotspot_users_per_day"]), 1)))
        self.salt = np.uint64(w.salt)
        for name, n in (("daily", self.p_daily), ("cycle", self.p_cycle), ("cell", self.n_cell)):
            if n >= _SPAN:
                msg = f"networks: the {name} pool ({n}) exceeds its address range"
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
            ep = d[c] // self.cycle_days
            out[c] = HOME_CYCLE_BASE + self._affine(rank[c], ep, self.p_cycle, 2)
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
