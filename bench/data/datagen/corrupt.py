"""Corruption operators, vectorised over whole columns.

Written for idbench following the published designs (FEBRL-style edit mix and keyboard
neighbourhoods, pseudopeople-style per-channel rates); no code is taken from GeCo or
FEBRL. Each operator takes the generator, a column and a rate, and returns the new
column and the boolean mask of the rows it changed (for hazard tags).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bench.data.datagen._util import categorical, fixed_strings, to_matrix
from bench.data.datagen.vocab import FAKE_NAMES, nicknames

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def _keyboard_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per byte value: two same-row neighbours and two same-column neighbours."""
    row_nb = np.zeros((256, 2), np.uint8)
    col_nb = np.zeros((256, 2), np.uint8)
    for r, keys in enumerate(_ROWS):
        for i, ch in enumerate(keys):
            left = keys[i - 1] if i > 0 else keys[i + 1]
            right = keys[i + 1] if i + 1 < len(keys) else keys[i - 1]
            row_nb[ord(ch)] = (ord(left), ord(right))
            up = _ROWS[r - 1][min(i, len(_ROWS[r - 1]) - 1)] if r > 0 else None
            down = _ROWS[r + 1][min(i, len(_ROWS[r + 1]) - 1)] if r + 1 < len(_ROWS) else None
            a, b = up or down, down or up
            col_nb[ord(ch)] = (ord(a), ord(b))
    return row_nb, col_nb


_ROW_NB, _COL_NB = _keyboard_tables()


def _replacement(
    rng: np.random.Generator, chars: np.ndarray, p_row: float, p_col: float
) -> np.ndarray:
    """A keyboard-plausible wrong character for each of ``chars`` (lower-case mapped)."""
    n = len(chars)
    lower = chars | 0x20
    is_alpha = (lower >= ord("a")) & (lower <= ord("z"))
    u = rng.random(n)
    side = rng.integers(0, 2, n)
    rnd = _LETTERS[rng.integers(0, 26, n)]
    rep = np.where(
        u < p_row,
        _ROW_NB[lower, side],
        np.where(u < p_row + p_col, _COL_NB[lower, side], rnd),
    )
    rep = np.where(is_alpha & (rep != 0), rep, rnd)
    upper = is_alpha & (chars < ord("a"))
    return np.where(upper, rep & 0xDF, rep).astype(np.uint8)


def typo(
    rng: np.random.Generator,
    col: pl.Series,
    rate: float,
    *,
    edit_mix: list[float],
    first_letter_kept: float,
    keyboard_row: float,
    keyboard_column: float,
) -> tuple[pl.Series, np.ndarray]:
    """One edit in a ``rate`` share of non-null cells.

    The edit is a substitution (keyboard neighbour), deletion, insertion, transposition or
    "other" (a doubled letter), mixed as ``edit_mix``; the first letter is spared with
    probability ``first_letter_kept`` (Pollock & Zamora).
    """
    n = len(col)
    hit = (rng.random(n) < rate) & col.is_not_null().to_numpy()
    lens = col.str.len_bytes().fill_null(0).to_numpy()
    hit &= lens >= 2
    idx = np.flatnonzero(hit)
    if len(idx) == 0:
        return col, hit
    sub = col.gather(idx)
    ln = lens[idx].astype(np.int64)
    width = int(ln.max()) + 1
    mat = to_matrix(sub, width)
    m = len(idx)
    op = categorical(rng, m, edit_mix)  # 0 sub, 1 del, 2 ins, 3 transpose, 4 double
    keep_first = rng.random(m) < first_letter_kept
    lo = np.where(keep_first, 1, 0)
    hi_excl = np.where(op == 3, ln - 1, ln)  # transposition needs a right neighbour
    pos = lo + np.floor(rng.random(m) * np.maximum(hi_excl - lo, 1)).astype(np.int64)
    pos = np.minimum(pos, ln - 1)
    rows = np.arange(m)
    j = np.arange(width)[None, :]
    p = pos[:, None]
    o = op[:, None]
    # Output column j reads input column src[j]; an inserted cell reads a new char.
    src = np.where(
        (o == 1) & (j >= p),
        j + 1,
        np.where(((o == 2) | (o == 4)) & (j > p), j - 1, j),
    )
    src = np.where((o == 3) & (j == p), j + 1, src)
    src = np.where((o == 3) & (j == p + 1), j - 1, src)
    src = np.clip(src, 0, width - 1)
    out = np.take_along_axis(mat, src, axis=1)
    orig = mat[rows, pos]
    out[(o[:, 0] == 1) & (ln == width), width - 1] = 0
    repl = _replacement(rng, orig, keyboard_row, keyboard_column)
    sub_rows = (op == 0) | (op == 2)
    out[rows[sub_rows], pos[sub_rows]] = repl[sub_rows]
    dbl = op == 4
    out[rows[dbl], pos[dbl]] = orig[dbl]
    # A deletion may leave a zero in the middle only at the end; clear past-the-end bytes.
    new_len = ln + np.where((op == 2) | (op == 4), 1, 0) - np.where(op == 1, 1, 0)
    out[j >= new_len[:, None]] = 0
    changed = pl.Series(fixed_strings(out))
    res = col.clone().scatter(idx, changed)
    diff = (changed != sub).to_numpy()
    hit[idx[~diff]] = False
    return res, hit


def nickname(rng: np.random.Generator, col: pl.Series, rate: float) -> tuple[pl.Series, np.ndarray]:
    """Replace given names that have a common nickname with it, in a ``rate`` share."""
    table = nicknames()
    has = col.is_in(list(table)).fill_null(False).to_numpy()
    hit = has & (rng.random(len(col)) < rate)
    idx = np.flatnonzero(hit)
    if len(idx):
        col = col.clone().scatter(idx, col.gather(idx).replace_strict(table, default=None))
    return col, hit


def swap(
    rng: np.random.Generator, a: pl.Series, b: pl.Series, rate: np.ndarray | float
) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Swap two columns (given/family name) in a ``rate`` share of rows (rate per row)."""
    hit = rng.random(len(a)) < rate
    idx = np.flatnonzero(hit)
    if len(idx):
        av, bv = a.gather(idx), b.gather(idx)
        a, b = a.clone().scatter(idx, bv), b.clone().scatter(idx, av)
    return a, b, hit


def blank(rng: np.random.Generator, col: pl.Series, rate: float) -> tuple[pl.Series, np.ndarray]:
    """Set a ``rate`` share of cells to null."""
    hit = (rng.random(len(col)) < rate) & col.is_not_null().to_numpy()
    idx = np.flatnonzero(hit)
    if len(idx):
        col = col.clone().scatter(idx, pl.repeat(None, len(idx), dtype=col.dtype, eager=True))
    return col, hit


def replace_with(
    rng: np.random.Generator, col: pl.Series, rate: float, values: tuple[str, ...]
) -> tuple[pl.Series, np.ndarray]:
    """Replace a ``rate`` share of cells by values drawn from ``values`` (junk, fakes)."""
    hit = rng.random(len(col)) < rate
    idx = np.flatnonzero(hit)
    if len(idx):
        pick = pl.Series(list(values), dtype=pl.String).gather(
            rng.integers(0, len(values), len(idx))
        )
        col = col.clone().scatter(idx, pick)
    return col, hit


def fake_names(
    rng: np.random.Generator, given: pl.Series, family: pl.Series, rate: float
) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Replace both name parts by a placeholder ("Test User") in a ``rate`` share."""
    hit = rng.random(len(given)) < rate
    idx = np.flatnonzero(hit)
    if len(idx):
        k = rng.integers(0, len(FAKE_NAMES), len(idx))
        g = pl.Series([f for f, _ in FAKE_NAMES], dtype=pl.String).gather(k)
        f = pl.Series([s for _, s in FAKE_NAMES], dtype=pl.String).gather(k)
        given, family = given.clone().scatter(idx, g), family.clone().scatter(idx, f)
    return given, family, hit


def date_errors(
    rng: np.random.Generator, days: np.ndarray, *, swap_rate: float, year_rate: float
) -> tuple[pl.Series, np.ndarray]:
    """Dates (days since 1970) -> DATE column with month/day swaps and off-by-one years."""
    s = pl.Series(days.astype(np.int32)).cast(pl.Date)
    n = len(days)
    y, m, d = s.dt.year().to_numpy(), s.dt.month().to_numpy(), s.dt.day().to_numpy()
    do_swap = (rng.random(n) < swap_rate) & (d <= 12) & (d != m)
    do_year = rng.random(n) < year_rate
    m2 = np.where(do_swap, d, m)
    d2 = np.where(do_swap, m, d)
    y2 = y + np.where(do_year, np.where(rng.random(n) < 0.5, -1, 1), 0)
    d2 = np.where((m2 == 2) & (d2 == 29), 28, d2)  # an off-by-one year must stay a real date
    out = pl.select(pl.date(pl.Series(y2), pl.Series(m2), pl.Series(d2))).to_series()
    return out, do_swap | do_year
