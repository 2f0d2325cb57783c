"""Mobile phone lines: churn, and dropped numbers recycled to later churners."""

from __future__ import annotations

import numpy as np

from bench.data.datagen._util import INF, prob_in_horizon
from bench.data.datagen.world.state import World


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


def phone_at(w: World, persons: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(number or -1, recycled-number flag) of persons' mobile lines at times ``t``."""
    row = w.p_phone[persons]
    has = row >= 0
    r = np.where(has, row, 0)
    after = (t >= w.ph_switch[r]) & (w.ph_new[r] >= 0)
    num = np.where(after, w.ph_new[r], w.ph_old[r])
    rec = np.where(after, w.ph_new_recycled[r], w.ph_old_recycled[r])
    return np.where(has, num, -1), has & rec
