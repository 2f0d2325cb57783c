"""Devices (personal and household-shared) and their browsers."""

from __future__ import annotations

import numpy as np

from bench.data.datagen import vocab
from bench.data.datagen._util import categorical, group_offsets, pick_in_group
from bench.data.datagen.world.state import World

#: Index of each device type, operating system and browser in the vocabulary lists.
DT = {name: i for i, name in enumerate(vocab.DEVICE_TYPES)}
OS = {name: i for i, name in enumerate(vocab.OSES)}
BR = {name: i for i, name in enumerate(vocab.BROWSERS)}


def is_apple(os_idx: np.ndarray) -> np.ndarray:
    """Whether each OS index is an Apple OS (iOS, iPadOS), which has its own ad-id rules."""
    return np.isin(os_idx, [OS["iOS"], OS["iPadOS"]])


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


def browsers_by_person(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Browsers grouped by the person using them: (browser ids sorted, starts, counts)."""
    owner = w.d_person[w.b_device]
    order = np.argsort(owner, kind="stable")
    starts, counts = group_offsets(owner[order], w.n_persons)
    return order, starts, counts


def pick_browser(
    rng: np.random.Generator, w: World, persons: np.ndarray, index: tuple[np.ndarray, ...]
) -> np.ndarray:
    """A random browser of each person (-1 when the person has none)."""
    order, starts, counts = index
    j = pick_in_group(rng, starts, counts, persons)
    return np.where(j >= 0, order[np.maximum(j, 0)], -1)
