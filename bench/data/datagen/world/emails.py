"""E-mail addresses: per-person slots built from name patterns, churn, shared family
addresses, and which address a record uses.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from bench.data.datagen import vocab
from bench.data.datagen._util import INF, categorical, prob_in_horizon
from bench.data.datagen.world.state import World


def _clean_lower(names: pl.Series) -> pl.Series:
    """Lower-case letters only, computed once per distinct name (names repeat a lot)."""
    uniq = names.unique(maintain_order=True)
    clean = uniq.str.to_lowercase().str.replace_all(r"[^a-z]", "")
    return names.replace_strict(uniq, clean, return_dtype=pl.String)


#: E-mail local-part patterns (assumption): (first part, separator, second part, suffix).
_PATTERNS = (
    ("g", ".", "f", ""),
    ("g", "", "f", ""),
    ("g0", "", "f", ""),
    ("f", "", "g0", "yy"),
    ("g", "", "", "num"),
    ("g", "_", "f", "yy"),
    ("f", ".", "g", "num"),
)
_PATTERN_SHARES = (0.25, 0.15, 0.15, 0.1, 0.15, 0.1, 0.1)


def _local_parts(rng: np.random.Generator, given: pl.Series, family: pl.Series) -> pl.Series:
    """E-mail local parts from name patterns; each row is built once, per pattern group."""
    n = len(given)
    pat = categorical(rng, n, _PATTERN_SHARES)
    num = rng.integers(1, 9999, n)
    yy = rng.integers(50, 100, n)
    g = _clean_lower(given)
    f = _clean_lower(family)
    order = np.argsort(pat, kind="stable")
    bounds = np.searchsorted(pat[order], np.arange(len(_PATTERNS) + 1))
    parts = []
    for k, (a, sep, b, suf) in enumerate(_PATTERNS):
        rows = order[bounds[k] : bounds[k + 1]]
        cols = {
            "g": g.gather(rows),
            "f": f.gather(rows),
            "num": pl.Series(num[rows]).cast(pl.String),
            "yy": pl.Series(yy[rows]).cast(pl.String),
        }
        cols["g0"] = cols["g"].str.slice(0, 1)
        pieces = [cols[a], pl.lit(sep)] + ([cols[b]] if b else []) + ([cols[suf]] if suf else [])
        parts.append(pl.select(pl.concat_str(pieces).alias("local")).to_series())
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    return pl.concat(parts).gather(inverse)


def _email_values(
    rng: np.random.Generator, given: pl.Series, family: pl.Series, work_domain: pl.Series
) -> pl.Series:
    """Full addresses: personal patterns at free-mail domains, or at the work domain."""
    n = len(given)
    local = _local_parts(rng, given, family)
    doms = np.array([d for d, _ in vocab.EMAIL_DOMAINS], dtype=object)
    free = pl.Series(doms.tolist(), dtype=pl.String).gather(
        categorical(rng, n, [s for _, s in vocab.EMAIL_DOMAINS])
    )
    domain = pl.select(pl.coalesce(work_domain, free)).to_series()
    return pl.select(pl.concat_str([local, pl.lit("@"), domain])).to_series()


def _make_unique(values: pl.Series, salt: np.ndarray) -> pl.Series:
    """Append a number to the local part of repeated addresses so each value has one owner.

    Repeats are found by sorting 64-bit hashes (a hash collision only adds a harmless
    suffix); the first occurrence keeps its plain value.
    """
    v = values
    for _ in range(4):
        h = v.hash(seed=7).to_numpy()
        order = np.argsort(h, kind="stable")
        hs = h[order]
        dup_sorted = np.concatenate(([False], hs[1:] == hs[:-1]))
        idx = np.sort(order[dup_sorted])
        if len(idx) == 0:
            break
        sub = v.gather(idx)
        tag = pl.Series(salt[idx]).cast(pl.String)
        fixed = pl.select(
            pl.concat_str(
                [sub.str.split_exact("@", 1).struct.field("field_0"), pl.lit("."), tag,
                 pl.lit("@"), sub.str.split_exact("@", 1).struct.field("field_1")]
            )
        ).to_series()  # fmt: skip
        v = v.clone().scatter(idx, fixed)
        salt = salt * 7 + 3
    return v


def build_emails(rng: np.random.Generator, w: World) -> None:
    """Per-person address slots (primary, work, others), churn, shared family addresses."""
    p = w.params["emails"]
    adults = np.flatnonzero(w.p_adult)
    counts = np.zeros(w.n_persons, np.int64)
    counts[adults] = categorical(rng, len(adults), p["count_shares"]) + 1
    person = np.repeat(np.arange(w.n_persons), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    slot = np.arange(len(person)) - starts[person]
    w.p_email_start, w.p_email_count = starts, counts
    # The work address sits in slot 1 for office workers with >= 2 addresses.
    is_work = (slot == 1) & (w.p_office[person] >= 0)
    w.p_work_slot = np.where((counts >= 2) & (w.p_office >= 0), starts + 1, -1)
    given = w.p_given.gather(person)
    family = w.p_family.gather(person)
    wd = pl.Series(w.p_office[person]).cast(pl.String)
    work_domain = pl.select(
        pl.when(pl.Series(is_work)).then(pl.lit("corp") + wd + ".example").otherwise(None)
    ).to_series()
    old = _email_values(rng, given, family, work_domain)

    # Churn: a person abandons one address at a random time and starts a new one; a name
    # change replaces the primary address half of the time (correlated noise).
    n_e = len(person)
    pchurn = prob_in_horizon(p["churn_per_year"], w.horizon)
    churner = rng.random(w.n_persons) < pchurn
    churn_slot = starts + np.floor(rng.random(w.n_persons) * np.maximum(counts, 1)).astype(np.int64)
    switch = np.full(n_e, INF)
    sel = churner & (counts > 0)
    switch[churn_slot[sel]] = rng.random(int(sel.sum())) * w.horizon
    renamed = np.isfinite(w.p_name_change_t) & (counts > 0) & (rng.random(w.n_persons) < 0.5)
    switch[starts[renamed]] = w.p_name_change_t[renamed]
    fin = np.flatnonzero(np.isfinite(switch))
    # Replacement addresses only for the slots that churn (a third of them at most).
    new = _email_values(
        rng, given.gather(fin), w.p_family_new.gather(person[fin]), work_domain.gather(fin)
    )

    # Shared family addresses: one per selected multi-person household.
    n_h = w.n_households
    adults_per_hh = np.bincount(w.p_hh[w.p_adult], minlength=n_h)
    shared = (adults_per_hh >= 2) & (rng.random(n_h) < w.params["households"]["shared_email_share"])
    sh_h = np.flatnonzero(shared)
    head = np.searchsorted(w.p_hh, sh_h)  # persons are grouped by household: first = head
    sh_local = pl.Series(["the", "family.", "our", ""], dtype=pl.String).gather(
        rng.integers(0, 4, len(sh_h))
    )
    sh_fam = w.p_family.gather(head).str.to_lowercase().str.replace_all(r"[^a-z]", "")
    doms = np.array([d for d, _ in vocab.EMAIL_DOMAINS], dtype=object)
    sh_dom = pl.Series(doms.tolist(), dtype=pl.String).gather(
        categorical(rng, len(sh_h), [s for _, s in vocab.EMAIL_DOMAINS])
    )
    sh_vals = pl.select(
        pl.concat_str([sh_local, sh_fam, pl.lit("s@"), sh_dom]).alias("v")
    ).to_series()

    all_vals = pl.concat([old, new, sh_vals])
    uniq = _make_unique(all_vals, np.arange(len(all_vals)) + 11)
    w.e_old = uniq.slice(0, n_e)
    w.e_new = pl.repeat(None, n_e, dtype=pl.String, eager=True).scatter(
        fin, uniq.slice(n_e, len(fin))
    )
    w.e_switch = switch
    w.e_person = person
    w.e_slot = slot
    w.e_hh = w.p_hh[person]
    # Household-shared addresses are appended as rows with e_person = -1.
    n_sh = len(sh_h)
    w.e_person = np.concatenate((person, np.full(n_sh, -1)))
    w.e_hh = np.concatenate((w.e_hh, sh_h))
    w.e_slot = np.concatenate((slot, np.full(n_sh, -1)))
    w.e_old = pl.concat([w.e_old, uniq.slice(n_e + len(fin), n_sh)])
    w.e_new = pl.concat([w.e_new, pl.repeat(None, n_sh, dtype=pl.String, eager=True)])
    w.e_switch = np.concatenate((switch, np.full(n_sh, INF)))
    w.hh_shared_email = np.full(n_h, -1, np.int64)
    w.hh_shared_email[sh_h] = n_e + np.arange(n_sh)


def email_at(w: World, slot_rows: np.ndarray, t: np.ndarray) -> pl.Series:
    """The value of email rows at times ``t`` (old before the switch, new after)."""
    after = t >= w.e_switch[slot_rows]
    old = w.e_old.gather(slot_rows)
    new = w.e_new.gather(slot_rows)
    return pl.select(pl.when(pl.Series(after)).then(new).otherwise(old)).to_series()


def choose_email_rows(
    rng: np.random.Generator, w: World, persons: np.ndarray, *, shared_use: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Which address row each record uses: primary 76% / work 8% / other (recipe shares).

    Returns (email row or -1 when the person has none, uses-shared-family-address flag).
    """
    p = w.params["emails"]
    n = len(persons)
    start = w.p_email_start[persons]
    cnt = w.p_email_count[persons]
    work = w.p_work_slot[persons]
    u = rng.random(n)
    other = start + np.floor(rng.random(n) * np.maximum(cnt, 1)).astype(np.int64)
    row = np.where(u < p["use_primary"], start, other)
    use_work = (u >= p["use_primary"]) & (u < p["use_primary"] + p["use_work"]) & (work >= 0)
    row = np.where(use_work, work, row)
    row = np.where(cnt > 0, row, -1)
    shared = w.hh_shared_email[w.p_hh[persons]]
    use_shared = (shared >= 0) & w.p_adult[persons] & (rng.random(n) < shared_use)
    row = np.where(use_shared, shared, row)
    return row, use_shared
