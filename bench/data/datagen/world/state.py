"""The :class:`World`: column arrays of every latent entity, filled by the build steps.

Each array is indexed by entity number (person, household, device, ...); times are
float days since the recipe's start date, within ``[0, horizon]``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl


@dataclass
class World:
    """Column arrays of every latent entity (see the module docstring)."""

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
