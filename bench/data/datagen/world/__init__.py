"""The latent world: households, persons, addresses, emails, phones, devices, cookies.

Everything is a column array indexed by entity number; time is float days since the
recipe's start date, within ``[0, horizon]``. Each function takes the generator ``rng``
explicitly and draws in a fixed order, so a seed fixes the world.

The world is built in steps, one module each: :mod:`.population` (households, persons,
offices, customers), :mod:`.addresses`, :mod:`.emails`, :mod:`.phones`, :mod:`.devices`
(devices and browsers) and :mod:`.identifiers` (cookies and mobile ad ids). Each module
also holds the look-ups of its entities at a given time, used by the renderers.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np

from bench.data.datagen.world.addresses import address_at, build_addresses
from bench.data.datagen.world.devices import (
    browsers_by_person,
    build_devices,
    is_apple,
    pick_browser,
)
from bench.data.datagen.world.emails import build_emails, choose_email_rows, email_at
from bench.data.datagen.world.identifiers import (
    build_cookies,
    build_maids,
    cookie_at,
    cookie_keys_lazy,
)
from bench.data.datagen.world.phones import build_phones, phone_at
from bench.data.datagen.world.population import build_population, family_at
from bench.data.datagen.world.state import World

__all__ = [
    "World",
    "address_at",
    "browsers_by_person",
    "build_world",
    "choose_email_rows",
    "cookie_at",
    "cookie_keys_lazy",
    "email_at",
    "family_at",
    "is_apple",
    "phone_at",
    "pick_browser",
]

log = logging.getLogger(__name__)


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
