"""How identifiers are written: keyed-hash ids, cookie and ad-id strings, phone formats,
user agents. Shared by the renderers and the truth tables, so both write one value the
same way.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bench.data.datagen import vocab
from bench.data.datagen._util import hex_ids, splitmix64
from bench.data.datagen.world import World


def numbered_ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """``<prefix><number zero-padded to width>`` strings."""
    return pl.select(
        pl.lit(prefix) + pl.Series(numbers.astype(np.int64)).cast(pl.String).str.zfill(width)
    ).to_series()


def account_ids(w: World, persons: np.ndarray) -> pl.Series:
    """Stable web-account id per person (a keyed hash: ids do not reveal person order)."""
    h = splitmix64(persons.astype(np.uint64) + np.uint64(w.salt ^ 0xACC0)) % np.uint64(10**10)
    return numbered_ids("A", h, 10)


def loyalty_ids(w: World, persons: np.ndarray) -> pl.Series:
    """Stable loyalty-card number per member."""
    h = splitmix64(persons.astype(np.uint64) + np.uint64(w.salt ^ 0x10A1)) % np.uint64(10**9)
    return numbered_ids("L", h, 9)


def cookie_strings(keys: np.ndarray) -> pl.Series:
    """Cookie id strings from uint64 keys (0 = no cookie -> null)."""
    s = pl.Series(hex_ids(keys))
    return pl.select(pl.when(pl.Series(keys != 0)).then(s).otherwise(None)).to_series()


def cookie_key_rows(w: World, rows: np.ndarray) -> np.ndarray:
    """Keys of materialised cookie rows (0 where row is -1)."""
    k = splitmix64(np.maximum(rows, 0).astype(np.uint64) + np.uint64(w.salt)) | np.uint64(1)
    return np.where(rows >= 0, k, np.uint64(0))


def phone_format(nums: np.ndarray, style: str) -> pl.Series:
    """Phone numbers as entered: call-centre style, web free text, or bare digits."""
    s = pl.Series(nums).cast(pl.String).str.zfill(10)
    a, b, c = s.str.slice(0, 3), s.str.slice(3, 3), s.str.slice(6, 4)
    if style == "crm":
        out = pl.select(
            pl.concat_str([pl.lit("("), a, pl.lit(") "), b, pl.lit("-"), c])
        ).to_series()
    elif style == "web":
        out = pl.select(
            pl.when(pl.Series(nums % 3 == 0))
            .then(pl.concat_str([a, pl.lit("-"), b, pl.lit("-"), c]))
            .when(pl.Series(nums % 3 == 1))
            .then(pl.concat_str([pl.lit("+1 "), a, pl.lit(" "), b, pl.lit(" "), c]))
            .otherwise(s)
        ).to_series()
    else:
        out = s
    return pl.select(pl.when(pl.Series(nums >= 0)).then(out).otherwise(None)).to_series()


def maid_strings(w: World, rows: np.ndarray, apple: np.ndarray) -> pl.Series:
    """UUID-formatted ad ids (upper case IDFA on Apple, lower case AAID elsewhere)."""
    hi = splitmix64(rows.astype(np.uint64) + np.uint64(w.salt ^ 0x3A1D))
    lo = splitmix64(hi)
    h = pl.Series(hex_ids(hi)) + pl.Series(hex_ids(lo))
    s = pl.select(
        pl.concat_str(
            [
                h.str.slice(0, 8),
                h.str.slice(8, 4),
                h.str.slice(12, 4),
                h.str.slice(16, 4),
                h.str.slice(20, 12),
            ],
            separator="-",
        )
    ).to_series()
    return pl.select(pl.when(pl.Series(apple)).then(s.str.to_uppercase()).otherwise(s)).to_series()


def user_agents(os_idx: np.ndarray, browser_idx: np.ndarray) -> pl.Series:
    """User-agent strings of (OS, browser) index pairs into the vocabulary lists."""
    table = [vocab.user_agent(o, b) for o in vocab.OSES for b in vocab.BROWSERS]
    return pl.Series(table, dtype=pl.String).gather(
        os_idx.astype(np.int64) * len(vocab.BROWSERS) + browser_idx.astype(np.int64)
    )
