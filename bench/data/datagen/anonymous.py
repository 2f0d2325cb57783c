"""Anonymous sources: one record per cookie / mobile ad id, and their evidence.

Evidence is aggregated per identifier as in the public cross-device challenges: each
identifier has one session-day per active day (a Binomial draw over its lifetime's days
at its device's daily activity), thinned to ``events.session_share`` of its active days
and capped at ``events.max_sessions``, so the evidence
grows with identifiers x active days: a year-long ad id has a year of evidence, a 3-day
cookie three days. Each session has a network (home / office / cellular / public wifi, by
device type), an hour (diurnal profile by device type) and a share of the identifier's
events. Sessions are aggregated into ``identifier_ip``, ``identifier_hour``;
``identifier_domain`` mixes the person's favourite domains with Zipf-drawn popular ones.
Work is done in chunks of identifiers (in record order, at most :data:`SESSION_BUDGET`
sessions each) and each chunk is written at once, so memory stays flat.

``ip_stats.identifiers`` counts the sampled identifiers seen on an address;
``ip_stats.population_identifiers`` adds the unsampled users a real platform would also
see there (a Poisson draw at the kind's population load, see :meth:`EvidenceWriter.ip_stats`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from bench.data.datagen import vocab
from bench.data.datagen._util import (
    ParquetSink,
    categorical_rows,
    day_to_ts,
    hex_ids,
    ip_strings,
    zipf_cdf,
)
from bench.data.datagen.formats import cookie_key_rows, maid_strings, user_agents
from bench.data.datagen.network import KINDS, Networks, kind_of
from bench.data.datagen.sources import Rendered
from bench.data.datagen.world import World, is_apple

CHUNK = 400_000
#: Upper bound of sampled sessions per chunk (memory: ~100 bytes per session).
SESSION_BUDGET = 4_000_000

IDENTIFIER_IP_SCHEMA = pa.schema(
    [
        ("record_id", pa.int64()),
        ("ip", pa.string()),
        ("events", pa.int64()),
        ("first_seen", pa.timestamp("us")),
        ("last_seen", pa.timestamp("us")),
    ]
)
IDENTIFIER_DOMAIN_SCHEMA = pa.schema(
    [("record_id", pa.int64()), ("domain", pa.string()), ("days", pa.int32())]
)
IDENTIFIER_HOUR_SCHEMA = pa.schema(
    [("record_id", pa.int64()), ("hour", pa.int8()), ("events", pa.int64())]
)


@dataclass
class Identifiers:
    """Anonymous identifiers in record order (cookies first, then maids)."""

    kind: np.ndarray  # 0 cookie, 1 maid
    row: np.ndarray  # row in the world's cookie / maid arrays
    device: np.ndarray
    start: np.ndarray
    end: np.ndarray
    visit: np.ndarray  # probability of activity on a day
    record_id: np.ndarray


def _label(names: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(names), dtype=pl.String).gather(idx.astype(np.int64))


def render_cookies(rng: np.random.Generator, w: World) -> tuple[Rendered, np.ndarray]:
    """Cookie records (shuffled); returns the block and the cookie row of each record."""
    rows = rng.permutation(len(w.c_browser))
    b = w.c_browser[rows]
    d = w.b_device[b]
    persons = w.d_person[d]
    r = Rendered("cookie", pl.DataFrame(), persons)
    r.tag("shared_device", w.d_shared[d])
    r.tag("itp_cookie_reset", w.c_itp[rows])
    r.frame = pl.DataFrame(
        {
            "ts": day_to_ts(w.start, w.c_start[rows]),
            "cookie_id": pl.Series(hex_ids(cookie_key_rows(w, rows))),
            "device_type": _label(vocab.DEVICE_TYPES, w.d_type[d]),
            "os": _label(vocab.OSES, w.d_os[d]),
            "browser": _label(vocab.BROWSERS, w.b_browser[b]),
            "user_agent": user_agents(w.d_os[d], w.b_browser[b]),
            "country": pl.repeat(w.params["world"]["country"], len(rows), eager=True),
        }
    )
    return r, rows


def render_maids(rng: np.random.Generator, w: World) -> tuple[Rendered, np.ndarray]:
    """Mobile-ad-id records (shuffled); returns the block and the maid row per record."""
    rows = rng.permutation(len(w.m_device))
    d = w.m_device[rows]
    persons = w.d_person[d]
    apple = is_apple(w.d_os[d])
    r = Rendered("maid", pl.DataFrame(), persons)
    r.tag("shared_device", w.d_shared[d])
    r.frame = pl.DataFrame(
        {
            "ts": day_to_ts(w.start, w.m_start[rows]),
            "maid": maid_strings(w, rows, apple),
            "device_type": _label(vocab.DEVICE_TYPES, w.d_type[d]),
            "os": _label(vocab.OSES, w.d_os[d]),
            "country": pl.repeat(w.params["world"]["country"], len(rows), eager=True),
        }
    )
    return r, rows


def identifiers(
    w: World,
    cookie_rows: np.ndarray | None,
    cookie_rid0: int,
    maid_rows: np.ndarray | None,
    maid_rid0: int,
) -> Identifiers:
    """Stack cookie and maid identifiers in record order for evidence generation."""
    parts = []
    active = np.array([vocab.ACTIVE_DAY[t] for t in vocab.DEVICE_TYPES])
    if cookie_rows is not None and len(cookie_rows):
        b = w.c_browser[cookie_rows]
        dev = w.b_device[b]
        visit = np.minimum(1.0 - np.exp(-w.b_visit[b]), 0.95)
        parts.append(
            (np.zeros(len(b), np.int8), cookie_rows, dev, w.c_start[cookie_rows],
             w.c_end[cookie_rows], visit, cookie_rid0 + np.arange(len(b)))
        )  # fmt: skip
    if maid_rows is not None and len(maid_rows):
        dev = w.m_device[maid_rows]
        parts.append(
            (np.ones(len(dev), np.int8), maid_rows, dev, w.m_start[maid_rows],
             w.m_end[maid_rows], active[w.d_type[dev]], maid_rid0 + np.arange(len(dev)))
        )  # fmt: skip
    if not parts:
        e = np.empty(0)
        return Identifiers(
            e.astype(np.int8), e.astype(np.int64), e.astype(np.int64), e, e, e, e.astype(np.int64)
        )
    cols = [np.concatenate([p[i] for p in parts]) for i in range(7)]
    return Identifiers(*cols)


@dataclass
class _Sessions:
    """Sampled session-days of a chunk of ``n`` identifiers, one entry per session."""

    n: int
    owner: np.ndarray  # index of the session's identifier within the chunk
    events: np.ndarray
    ts: np.ndarray  # float days
    hour: np.ndarray
    net: np.ndarray  # index into network.KINDS
    ip: np.ndarray
    active: np.ndarray  # active days per identifier (not per session)


class EvidenceWriter:
    """Writes the evidence tables chunk by chunk and accumulates per-IP statistics."""

    def __init__(self, w: World, nets: Networks, sinks: dict[str, ParquetSink]) -> None:
        self.w = w
        self.nets = nets
        self.sinks = sinks
        p = w.params["events"]
        self.per_day = np.array([p["per_day"][t] for t in vocab.DEVICE_TYPES])
        self.max_sessions = int(p["max_sessions"])
        self.session_share = float(p["session_share"])
        self.domain_cdf = zipf_cdf(int(p["domains"]), p["domain_zipf"])
        self.domains = pl.Series(vocab.domain_names(int(p["domains"])).tolist(), dtype=pl.String)
        self.hours = np.stack([vocab.HOUR_PROFILE[t] for t in vocab.DEVICE_TYPES])
        self.net_mix = np.array([vocab.NETWORK_MIX[t] for t in vocab.DEVICE_TYPES])
        wifi = w.params["networks"]["public_wifi_session_share"]
        # Rescale the wifi column so the overall wifi share follows the knob.
        base = self.net_mix[:, 3].mean() or 1.0
        self.net_mix[:, 3] = self.net_mix[:, 3] * (wifi / base if base else 0.0)
        self.ip_parts: list[pl.DataFrame] = []

    def chunk(
        self, rng: np.random.Generator, ids: Identifiers, lo: int, hi: int
    ) -> dict[str, np.ndarray]:
        """Evidence of identifiers ``lo:hi``; returns hazard masks for those identifiers."""
        s = self._sessions(rng, ids, lo, hi)
        rid = ids.record_id[lo:hi]
        self._write_ips(s, rid)
        if "identifier_hour" in self.sinks:
            cnt = np.bincount(s.owner * 24 + s.hour, weights=s.events, minlength=s.n * 24)
            nzk = np.flatnonzero(cnt)
            self.sinks["identifier_hour"].write(
                pl.DataFrame(
                    {
                        "record_id": rid[nzk // 24],
                        "hour": (nzk % 24).astype(np.int8),
                        "events": cnt[nzk].astype(np.int64),
                    }
                )
            )
        if "identifier_domain" in self.sinks:
            self._domains(rng, rid, self.w.d_person[ids.device[lo:hi]], s.active)
        hz = {
            "cgnat_ip": np.bincount(s.owner, weights=s.net == 2, minlength=s.n) > 0,
            "office_ip": np.bincount(s.owner, weights=s.net == 1, minlength=s.n) > 0,
            "public_wifi_ip": np.bincount(s.owner, weights=s.net == 3, minlength=s.n) > 0,
        }
        return hz

    def _sessions(self, rng: np.random.Generator, ids: Identifiers, lo: int, hi: int) -> _Sessions:
        """Sample the session-days of identifiers ``lo:hi``: day, hour, network, address."""
        w = self.w
        dev = ids.device[lo:hi]
        n = hi - lo
        start, end = ids.start[lo:hi], ids.end[lo:hi]
        length = np.maximum(end - start, 1e-3)
        dtype = w.d_type[dev].astype(np.int64)
        n_days = np.ceil(length).astype(np.int64)
        active = np.maximum(1, rng.binomial(n_days, ids.visit[lo:hi]))
        events = 1 + rng.poisson(self.per_day[dtype] * active)
        s = active
        if self.session_share < 1.0:
            s = np.maximum(1, rng.binomial(active, self.session_share))
        s = np.minimum(s, self.max_sessions)
        k = np.repeat(np.arange(n), s)
        starts = np.concatenate(([0], np.cumsum(s)[:-1]))
        j = np.arange(len(k)) - starts[k]
        ev = events[k] // s[k] + (j < events[k] % s[k])
        day = start[k] + rng.random(len(k)) * length[k]
        hour = categorical_rows(rng, self.hours, dtype[k])
        net = categorical_rows(rng, self.net_mix, dtype[k])
        person = w.d_person[dev][k]
        office = w.p_office[person]
        shared = w.d_shared[dev][k]
        net = np.where((net == 1) & ((office < 0) | shared), 0, net)
        ip = np.empty(len(k), np.int64)
        m = net == 0
        ip[m] = self.nets.home(w.d_hh[dev][k][m], day[m])
        m = net == 1
        ip[m] = self.nets.office(rng, office[m])
        m = net == 2
        ip[m] = self.nets.cellular(rng, int(m.sum()))
        m = net == 3
        ip[m] = self.nets.wifi(rng, int(m.sum()))
        ts = np.floor(day) + (hour + rng.random(len(k))) / 24.0
        return _Sessions(n=n, owner=k, events=ev, ts=ts, hour=hour, net=net, ip=ip, active=active)

    def _write_ips(self, s: _Sessions, rid: np.ndarray) -> None:
        """``identifier_ip`` rows (sessions grouped by identifier and address); IP totals."""
        # One sort of a packed (identifier, ip) key groups the sessions.
        key = s.owner.astype(np.int64) * (1 << 32) + s.ip
        order = np.argsort(key, kind="stable")
        ks = key[order]
        first = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
        g_ev = np.add.reduceat(s.events[order], first)
        g_f = np.minimum.reduceat(s.ts[order], first)
        g_l = np.maximum.reduceat(s.ts[order], first)
        g_k = ks[first] >> 32
        g_ip = ks[first] & 0xFFFFFFFF
        if "identifier_ip" in self.sinks:
            self.sinks["identifier_ip"].write(
                pl.DataFrame(
                    {
                        "record_id": rid[g_k],
                        "ip": ip_strings(g_ip),
                        "events": g_ev.astype(np.int64),
                        "first_seen": day_to_ts(self.w.start, g_f),
                        "last_seen": day_to_ts(self.w.start, g_l),
                    }
                )
            )
        self.ip_parts.append(
            pl.DataFrame({"ip": g_ip, "events": g_ev.astype(np.int64)})
            .group_by("ip")
            .agg(pl.col("events").sum(), pl.len().alias("identifiers"))
        )

    def _domains(
        self, rng: np.random.Generator, rid: np.ndarray, person: np.ndarray, active: np.ndarray
    ) -> None:
        """Favourite domains (60% each) plus 1 + Poisson(2) Zipf draws (assumption).

        Both scale down for identifiers active on fewer than seven days.
        """
        w = self.w
        n = len(rid)
        fav = w.p_favourites[person]
        nf = fav.shape[1]
        # Short-lived identifiers see fewer domains: scale by active days (a week = full).
        scale = np.minimum(1.0, active / 7.0)
        keep = rng.random((n, nf)) < 0.6 * scale[:, None]
        fr, fc = np.nonzero(keep)
        fav_rows, fav_dom = fr, fav[fr, fc]
        nz = 1 + rng.poisson(2.0 * scale)
        zr = np.repeat(np.arange(n), nz)
        zd = np.searchsorted(self.domain_cdf, rng.random(len(zr)), side="right")
        r = np.concatenate((fav_rows, zr))
        d = np.concatenate((fav_dom, zd))
        q = np.concatenate((np.full(len(fav_rows), 0.6), np.full(len(zr), 0.2)))
        days = 1 + rng.binomial(np.maximum(active[r] - 1, 0), q)
        # Deduplicate (identifier, domain) keeping the most days: one sort of a packed key.
        n_dom = len(self.domains)
        packed = np.sort((r.astype(np.int64) * n_dom + d) * 1024 + np.minimum(days, 1023))
        key = packed >> 10
        last = np.flatnonzero(np.concatenate((key[1:] != key[:-1], [True])))
        key, days = key[last], (packed[last] & 1023).astype(np.int32)
        self.sinks["identifier_domain"].write(
            pl.DataFrame(
                {
                    "record_id": rid[key // n_dom],
                    "domain": self.domains.gather(key % n_dom),
                    "days": days,
                }
            )
        )

    def ip_stats(self, rng: np.random.Generator) -> pl.DataFrame:
        """Per address: is_cellular, events, sampled and population identifiers.

        ``population_identifiers`` adds the unsampled users of the address: a Poisson
        draw whose mean is the kind's load per address in the population, i.e.
        ``(1 - f) / f`` x (sampled identifier-address rows of the kind) / (addresses of
        the kind in the population), with ``f`` the sample share. ``events`` counts the
        sampled identifiers' events only.
        """
        if not self.ip_parts:
            return pl.DataFrame(
                schema={
                    "ip": pl.String,
                    "is_cellular": pl.Boolean,
                    "events": pl.Int64,
                    "identifiers": pl.Int64,
                    "population_identifiers": pl.Int64,
                    "kind": pl.String,
                }
            )
        df = (
            pl.concat(self.ip_parts)
            .group_by("ip")
            .agg(pl.col("events").sum(), pl.col("identifiers").sum().cast(pl.Int64))
            .sort("ip")
        )
        self.ip_parts = []
        ips = df.get_column("ip").to_numpy()
        kind = kind_of(ips).astype(np.int64)
        ids = df.get_column("identifiers").to_numpy()
        f = self.nets.sample_share
        rows = np.bincount(kind, weights=ids, minlength=len(KINDS))
        pool = np.array([max(self.nets.pool_ips[k], 1) for k in KINDS], np.float64)
        load = (1.0 - f) / f * rows / pool
        return pl.DataFrame(
            {
                "ip": ip_strings(ips),
                "is_cellular": kind == 2,
                "events": df.get_column("events").cast(pl.Int64),
                "identifiers": ids,
                "population_identifiers": ids + rng.poisson(load[kind]),
                "kind": pl.Series(list(KINDS), dtype=pl.String).gather(kind),
            }
        )


def write_evidence(
    rng: np.random.Generator,
    w: World,
    nets: Networks,
    ids: Identifiers,
    sinks: dict[str, ParquetSink],
    progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, np.ndarray], pl.DataFrame]:
    """Generate and write all evidence; return hazard masks (per identifier) and ip stats."""
    ev = EvidenceWriter(w, nets, sinks)
    n = len(ids.device)
    hz: dict[str, list[np.ndarray]] = {}
    bounds = chunk_bounds(ids, ev.max_sessions)
    for lo, hi in itertools.pairwise(bounds.tolist()):
        for name, mask in ev.chunk(rng, ids, lo, hi).items():
            hz.setdefault(name, []).append(mask)
        if progress:
            progress(hi / max(n, 1))
    masks = {k: np.concatenate(v) for k, v in hz.items()}
    return masks, ev.ip_stats(rng)


def chunk_bounds(ids: Identifiers, max_sessions: int) -> np.ndarray:
    """Chunk boundaries over identifiers: at most :data:`CHUNK` identifiers and about
    :data:`SESSION_BUDGET` sessions each (bounded by lifetime days, capped per identifier).
    """
    n = len(ids.device)
    bound = np.minimum(np.ceil(np.maximum(ids.end - ids.start, 1e-3)), max_sessions)
    cum = np.cumsum(bound)
    total = float(cum[-1]) if n else 0.0
    by_sessions = np.searchsorted(cum, np.arange(SESSION_BUDGET, total, SESSION_BUDGET))
    by_count = np.arange(CHUNK, n, CHUNK)
    return np.unique(np.concatenate(([0], by_sessions, by_count, [n]))).astype(np.int64)
