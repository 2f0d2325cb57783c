"""Device identifiers over time: browser cookies and mobile advertising ids."""

from __future__ import annotations

import numpy as np

from bench.data.datagen._util import splitmix64
from bench.data.datagen.world.devices import BR, DT, is_apple
from bench.data.datagen.world.state import World


def build_cookies(rng: np.random.Generator, w: World, *, materialise: bool = True) -> None:
    """Cookie lifetimes per browser: deletion by class, ITP caps, Poisson renewals.

    With ``materialise=False`` only the per-browser rates are kept: first-party-only
    scenarios need cookie ids at a few order times, which :func:`cookie_keys_lazy`
    draws from the same renewal process without simulating every cookie.
    ``cookies.observed_share`` thins the materialised cookies (a uniform sample of
    lifetimes the platform sees); the lazy keys are not thinned.
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
    if p["observed_share"] < 1.0:
        # The platform observes a sample of cookie lifetimes (records, evidence, logins).
        seen = rng.random(nc) < p["observed_share"]
        b, c_start, c_end, c_itp = b[seen], c_start[seen], c_end[seen], c_itp[seen]
    w.c_browser, w.c_start, w.c_end, w.c_itp = b, c_start, c_end, c_itp


def build_maids(rng: np.random.Generator, w: World) -> None:
    """Mobile advertising ids on phones, tablets and TVs (opt-in), with rare resets."""
    p = w.params["devices"]
    mobile = np.isin(w.d_type, [DT["phone"], DT["tablet"], DT["tv"]])
    apple = is_apple(w.d_os)
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
