"""Vocabularies: frequency-weighted names (package data), nicknames, places, domains.

Loaded once per process from ``bench/data/datagen/data`` (provenance in ``data/NOTICE.md``);
nothing here draws random numbers.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

CULTURES = ("en", "fam_first")

STREET_SUFFIXES = ("St", "Ave", "Rd", "Ln", "Dr", "Ct", "Pl", "Way", "Blvd", "Ter")
STREET_ROOTS_EXTRA = (
    "Oak", "Maple", "Pine", "Cedar", "Elm", "Willow", "Birch", "Spruce", "Walnut", "Cherry",
    "Park", "Lake", "Hill", "River", "Sunset", "Highland", "Meadow", "Forest", "Church",
    "Main", "Mill", "Spring", "Ridge", "Valley", "Washington", "Lincoln", "Franklin",
)  # fmt: skip
CITY_SUFFIXES = ("ville", "ton", "field", "port", "burg", " City", " Springs", " Falls", "wood")
STATES = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ",
    "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT",
    "VA", "WA", "WV", "WI", "WY",
)  # fmt: skip
#: Free-mail domains with shares of personal addresses (assumption, rounded market shares).
EMAIL_DOMAINS = (
    ("gmail.com", 0.38), ("yahoo.com", 0.12), ("hotmail.com", 0.08), ("outlook.com", 0.07),
    ("icloud.com", 0.08), ("aol.com", 0.04), ("comcast.net", 0.04), ("msn.com", 0.02),
    ("protonmail.com", 0.02), ("att.net", 0.03), ("verizon.net", 0.02), ("live.com", 0.03),
    ("me.com", 0.02), ("mail.com", 0.02), ("gmx.com", 0.02), ("ymail.com", 0.01),
)  # fmt: skip
JUNK_EMAILS = (
    "noemail@noemail.com", "test@test.com", "none@none.com", "na@na.com", "no@email.com",
    "x@x.com", "customer@store.com",
)  # fmt: skip
JUNK_PHONES = ("0000000000", "1234567890", "5555550100", "9999999999")
FAKE_NAMES = (("Test", "User"), ("John", "Doe"), ("Mickey", "Mouse"), ("Jane", "Doe"), ("Na", "Na"))
DOMAIN_WORDS = (
    "news", "shop", "sport", "tech", "travel", "food", "games", "music", "video", "health",
    "auto", "home", "money", "style", "kids", "pets", "garden", "movies", "weather", "books",
)  # fmt: skip

#: Device taxonomy. Order matters: indices are stored in the world arrays.
DEVICE_TYPES = ("phone", "tablet", "laptop", "desktop", "tv")
OSES = ("iOS", "Android", "iPadOS", "Windows", "macOS", "Tizen", "webOS")
BROWSERS = ("Safari", "Chrome", "Samsung Internet", "Edge", "Firefox", "App")
#: OS mix per device type (assumption; rounded market shares).
OS_MIX = {
    "phone": {"iOS": 0.55, "Android": 0.45},
    "tablet": {"iPadOS": 0.6, "Android": 0.4},
    "laptop": {"Windows": 0.7, "macOS": 0.3},
    "desktop": {"Windows": 0.85, "macOS": 0.15},
    "tv": {"Tizen": 0.5, "webOS": 0.5},
}
#: Browser mix per OS (assumption). TVs run apps only: no browser, no cookies.
BROWSER_MIX = {
    "iOS": {"Safari": 0.85, "Chrome": 0.15},
    "Android": {"Chrome": 0.9, "Samsung Internet": 0.1},
    "iPadOS": {"Safari": 0.9, "Chrome": 0.1},
    "Windows": {"Chrome": 0.65, "Edge": 0.25, "Firefox": 0.10},
    "macOS": {"Safari": 0.5, "Chrome": 0.45, "Firefox": 0.05},
    "Tizen": {"App": 1.0},
    "webOS": {"App": 1.0},
}
UA_OS = {
    "iOS": "iPhone; CPU iPhone OS 17_4 like Mac OS X",
    "Android": "Linux; Android 14; SM-S918B",
    "iPadOS": "iPad; CPU OS 17_4 like Mac OS X",
    "Windows": "Windows NT 10.0; Win64; x64",
    "macOS": "Macintosh; Intel Mac OS X 10_15_7",
    "Tizen": "SMART-TV; Tizen 7.0",
    "webOS": "Web0S; Linux/SmartTV",
}
UA_BROWSER = {
    "Safari": "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Chrome": "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Samsung Internet": "AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Safari/537.36",
    "Edge": "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0",
    "Firefox": "Gecko/20100101 Firefox/125.0",
    "App": "AppleWebKit/537.36 (KHTML, like Gecko)",
}
#: Share of days a device type is used at all (assumption).
ACTIVE_DAY = {"phone": 0.85, "tablet": 0.35, "laptop": 0.6, "desktop": 0.5, "tv": 0.4}
#: Session network mix per device type: home, office, cellular, public wifi (assumption;
#: office sessions fall back to home for persons without an office).
NETWORK_MIX = {
    "phone": (0.45, 0.15, 0.35, 0.05),
    "tablet": (0.90, 0.00, 0.05, 0.05),
    "laptop": (0.55, 0.35, 0.00, 0.10),
    "desktop": (0.95, 0.05, 0.00, 0.00),
    "tv": (1.00, 0.00, 0.00, 0.00),
}
#: Hour-of-day activity profile per device type (assumption; qualitative shape from the
#: CIKM Cup 2016 time-of-day features: phones spread, desktops office hours, TV evening).
_H = np.arange(24)
HOUR_PROFILE = {
    "phone": 0.2 + np.exp(-((_H - 8) ** 2) / 4) + np.exp(-((_H - 13) ** 2) / 6) + 1.5 * np.exp(-((_H - 21) ** 2) / 6),
    "tablet": 0.1 + 2.0 * np.exp(-((_H - 20) ** 2) / 6),
    "laptop": 0.1 + 1.2 * np.exp(-((_H - 11) ** 2) / 10) + np.exp(-((_H - 21) ** 2) / 5),
    "desktop": 0.1 + 1.5 * np.exp(-((_H - 12) ** 2) / 12) + 0.5 * np.exp(-((_H - 20) ** 2) / 5),
    "tv": 0.05 + 2.5 * np.exp(-((_H - 21) ** 2) / 4),
}  # fmt: skip


@dataclass(frozen=True)
class NameTable:
    """Names of one culture/sex with their sampling CDF."""

    names: np.ndarray  # object array of str
    cdf: np.ndarray


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("bench.data.datagen").joinpath("data", name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _table(rows: list[dict[str, str]]) -> NameTable:
    names = np.array([r["name"] for r in rows], dtype=object)
    w = np.array([float(r["weight"]) for r in rows])
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return NameTable(names, cdf)


@functools.cache
def given_names(culture: str, sex: str) -> NameTable:
    """Weighted given names: culture ``en`` by sex (``F``/``M``); ``fam_first`` unisex."""
    rows = [r for r in _read_csv("given_names.csv") if r["culture"] == culture]
    if culture == "en":
        rows = [r for r in rows if r["sex"] == sex]
    return _table(rows)


@functools.cache
def family_names(culture: str) -> NameTable:
    """Weighted family names of a culture."""
    return _table([r for r in _read_csv("family_names.csv") if r["culture"] == culture])


@functools.cache
def nicknames() -> dict[str, str]:
    """Given name -> most common nickname (first listed wins)."""
    out: dict[str, str] = {}
    for r in _read_csv("nicknames.csv"):
        out.setdefault(r["name"], r["nickname"])
    return out


@functools.cache
def street_names() -> np.ndarray:
    """Street name vocabulary: roots (family names, trees, landmarks) x suffixes."""
    roots = list(STREET_ROOTS_EXTRA) + [str(n) for n in family_names("en").names[:300]]
    return np.array([f"{r} {s}" for r in roots for s in STREET_SUFFIXES], dtype=object)


@functools.cache
def city_names() -> np.ndarray:
    """City name vocabulary (family-name roots x suffixes), in a fixed order."""
    roots = [str(n) for n in family_names("en").names]
    return np.array([f"{r}{s}" for s in CITY_SUFFIXES for r in roots], dtype=object)


def domain_names(n: int) -> np.ndarray:
    """``n`` synthetic web domains; rank 0 is the most visited."""
    words = np.array(DOMAIN_WORDS, dtype=object)
    k = np.arange(n)
    return np.array(
        [f"{words[i % len(words)]}{i // len(words)}.example" for i in k.tolist()], dtype=object
    )


def user_agent(os_name: str, browser: str) -> str:
    """A representative user agent string for an OS/browser pair."""
    return f"Mozilla/5.0 ({UA_OS[os_name]}) {UA_BROWSER[browser]}"
