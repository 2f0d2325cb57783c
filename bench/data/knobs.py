"""The knobs of a generated recipe: every tunable parameter with its default and unit.

A recipe TOML (see :mod:`bench.data.recipes`) overrides some of them; the basis of each
default is documented in ``datasets/README.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOBS", "SIZES", "SOURCES_ANONYMOUS", "SOURCES_FIRST_PARTY", "Knob"]

SIZES = ("tiny", "small", "large", "xl")
SOURCES_FIRST_PARTY = ("crm", "order", "loyalty", "pos", "login")
SOURCES_ANONYMOUS = ("cookie", "maid")


@dataclass(frozen=True)
class Knob:
    """One tunable parameter: its default, unit and the rule its value must satisfy.

    ``check`` is one of ``count`` (integer >= 0), ``positive`` (number > 0), ``rate``
    (number >= 0), ``share`` (0..1), ``shares`` (list of shares summing to 1), ``range``
    (``[lo, hi]`` with 0 <= lo <= hi), ``bool``, ``date`` (ISO string), ``choice`` (one
    of ``choices``), ``subset`` (list drawn from ``choices``), ``rates`` (table of
    name -> rate >= 0).
    """

    default: Any
    unit: str
    check: str
    choices: tuple[str, ...] = ()


def _k(default: Any, unit: str, check: str, choices: Iterable[str] = ()) -> Knob:
    return Knob(default, unit, check, tuple(choices))


#: Every knob with its default. The basis of each figure is in datasets/README.md.
KNOBS: dict[str, dict[str, Knob]] = {
    "world": {
        "persons": _k(2000, "persons", "count"),
        "horizon_days": _k(365, "days", "count"),
        "start_date": _k("2024-01-01", "ISO date", "date"),
        "country": _k("US", "ISO 3166 code", "choice", ("US",)),
        "family_first_share": _k(0.05, "share of households", "share"),
    },
    "households": {
        "size_shares": _k(
            [0.28, 0.34, 0.15, 0.13, 0.06, 0.025, 0.015], "share per size 1..7", "shares"
        ),
        "moves_per_year": _k(0.09, "share of households per year", "share"),
        "shared_email_share": _k(0.05, "share of multi-person households", "share"),
        "shared_devices": _k([1, 3], "devices per multi-person household", "range"),
        "cities_per_100k_households": _k(50.0, "cities", "positive"),
    },
    "emails": {
        "count_shares": _k([0.23, 0.46, 0.16, 0.15], "share with 1,2,3,4 addresses", "shares"),
        "use_primary": _k(0.76, "share of records", "share"),
        "use_work": _k(0.08, "share of records", "share"),
        "churn_per_year": _k(0.31, "share of persons per year", "share"),
        "junk_share": _k(0.005, "share of email cells", "share"),
    },
    "phones": {
        "mobile_share": _k(0.97, "share of adults", "share"),
        "churn_per_year": _k(0.10, "share of numbers per year", "share"),
        "recycle_share": _k(0.5, "share of dropped numbers", "share"),
        "recycle_gap_days": _k([45, 90], "days", "range"),
        "junk_share": _k(0.003, "share of phone cells", "share"),
    },
    "devices": {
        "extra_mean": _k(1.5, "devices per adult beyond the first", "rate"),
        "max_per_adult": _k(6, "devices", "count"),
        "second_browser_share": _k(0.2, "share of laptops/desktops", "share"),
        "maid_optin_ios": _k(0.25, "share of iOS devices", "share"),
        "maid_optin_android": _k(0.9, "share of Android devices", "share"),
        "maid_reset_per_year": _k(0.03, "resets per device per year", "rate"),
    },
    "cookies": {
        "scope": _k("first_party", "scope", "choice", ("first_party", "third_party")),
        "first_party_class_shares": _k([0.69, 0.24, 0.07], "never/regular/serial", "shares"),
        "third_party_class_shares": _k([0.73, 0.20, 0.07], "never/regular/serial", "shares"),
        "first_party_deletes_per_month": _k([0.0, 2.5, 12.0], "deletions/month", "rates"),
        "third_party_deletes_per_month": _k([0.0, 2.5, 14.2], "deletions/month", "rates"),
        "itp_mode": _k("cap", "mode", "choice", ("cap", "purge", "off")),
        "itp_days": _k(7, "days", "count"),
        "browser_reach": _k(1.0, "share of browsers carrying a cookie", "share"),
        "observed_share": _k(1.0, "share of cookie lifetimes the platform observes", "share"),
    },
    "networks": {
        "sample_share": _k(0.001, "share of the population's persons in the sample", "share"),
        "home_daily_renumber_share": _k(0.02, "share of home networks", "share"),
        "home_renumber_days": _k(60, "days between renumberings (staggered)", "count"),
        "cgnat_subscribers_per_ip": _k(300, "devices per public IPv4", "count"),
        "office_share": _k(0.6, "share of adults", "share"),
        "office_size": _k([20, 2000], "employees", "range"),
        "office_egress_ips": _k([1, 4], "IPs per office", "range"),
        "public_wifi_session_share": _k(0.05, "share of sessions", "share"),
        "hotspot_users_per_day": _k(200, "users per hotspot per day", "count"),
    },
    "events": {
        "per_day": _k(
            {"phone": 30.0, "tablet": 5.0, "laptop": 15.0, "desktop": 15.0, "tv": 5.0},
            "events/day while active",
            "rates",
        ),
        "session_share": _k(1.0, "share of active days sampled as session-days", "share"),
        "max_sessions": _k(366, "cap on session-days per identifier", "count"),
        "domains": _k(5000, "domains", "count"),
        "domain_zipf": _k(1.0, "Zipf exponent", "rate"),
        "favourite_domains": _k(3, "domains per person", "count"),
    },
    "customers": {
        "reach": _k(0.35, "share of adults with a CRM/loyalty record", "share"),
        "crm_share": _k(0.8, "share of customers", "share"),
        "loyalty_share": _k(0.5, "share of customers", "share"),
        "web_account_share": _k(0.6, "share of customers", "share"),
        "login_cookie_share": _k(0.25, "share of cookies", "share"),
        "logins_per_cookie": _k(1.5, "logins per logged-in cookie", "rate"),
        "orders_per_year": _k(3.0, "orders per web account", "rate"),
        "order_value_mean": _k(60.0, "currency units", "positive"),
        "pos_shopper_share": _k(0.5, "share of adults", "share"),
        "pos_per_year": _k(4.0, "transactions per shopper", "rate"),
        "loyalty_swipe_share": _k(0.6, "share of member transactions", "share"),
        "crm_duplicate_rate": _k(0.09, "share of CRM records that are extra", "share"),
        "duplicate_zipf": _k(1.5, "exponent s of P(k) ~ k^-s", "positive"),
        "duplicate_max": _k(20, "extra records per person", "count"),
    },
    "noise": {
        "typo": _k(
            {
                "crm_given": 0.10,
                "crm_family": 0.15,
                "web": 0.01,
                "till": 0.05,
            },
            "share of cells",
            "rates",
        ),
        "edit_mix": _k([0.45, 0.25, 0.15, 0.05, 0.10], "sub/del/ins/transpose/other", "shares"),
        "first_letter_kept": _k(0.92, "share of typos", "share"),
        "keyboard_row": _k(0.4, "share of substitutions", "share"),
        "keyboard_column": _k(0.3, "share of substitutions", "share"),
        "nickname": _k({"crm": 0.01, "web": 0.01, "till": 0.10}, "share of cells", "rates"),
        "swap_names": _k(0.01, "share of records", "share"),
        "swap_family_first_multiplier": _k(3.0, "factor", "positive"),
        "date_swap": _k(0.01, "share of dates", "share"),
        "date_year": _k(0.01, "share of dates", "share"),
        "missing": _k(
            {
                "crm_phone": 0.30,
                "crm_dob": 0.50,
                "crm_middle": 0.70,
                "crm_email": 0.10,
                "order_phone": 0.10,
                "loyalty_email": 0.15,
                "loyalty_phone": 0.20,
            },
            "share of cells",
            "rates",
        ),
        "fake_name": _k(0.005, "share of records", "share"),
        "name_change_per_year": _k(0.01, "share of adults per year", "share"),
    },
    "sources": {
        "first_party": _k(list(SOURCES_FIRST_PARTY), "sources", "subset", SOURCES_FIRST_PARTY),
        "anonymous": _k(list(SOURCES_ANONYMOUS), "sources", "subset", SOURCES_ANONYMOUS),
        "evidence": _k(True, "flag", "bool"),
    },
}
