"""Fellegi-Sunter estimation over feature *patterns*: EM without labels, counts with labels.

The anonymous matchers (:mod:`matchers.anonymous`) group their candidate pairs by feature
pattern (one integer level per feature) and estimate the model from the pattern counts,
never from records or pairs:

- :func:`fellegi_sunter_em`: conditional independence, Laplace-smoothed EM for the
  match share lambda and the m/u probabilities per feature level; with ``fit=False`` it
  scores with the given start values (the priors below, or a model learnt elsewhere);
- :func:`fellegi_sunter_supervised`: m, u and lambda counted from labelled candidate
  pairs, with lambda corrected for how the labelled persons were drawn.

:data:`PRIOR_M`, :data:`PRIOR_U` and :data:`PRIOR_LAMBDA` are the documented priors of
the anonymous features (:data:`matchers.anonymous_pairs.FEATURES`), used when EM is
skipped and as EM's start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "PRIOR_LAMBDA",
    "PRIOR_M",
    "PRIOR_U",
    "fellegi_sunter_em",
    "fellegi_sunter_supervised",
]

#: Prior m probabilities per level (used when EM is skipped, and as EM's start).
PRIOR_M: dict[str, list[float]] = {
    "ips": [0.3, 0.3, 0.1, 0.1, 0.1, 0.1],
    "cooc": [0.05, 0.2, 0.75],
    "device_time": [0.01, 0.15, 0.3, 0.02, 0.04, 0.08, 0.1, 0.1, 0.2, 0.0],
    "hour": [0.4, 0.3, 0.1, 0.2],
    "domain": [0.4, 0.05, 0.15, 0.4],
}
#: Prior u probabilities per level.
PRIOR_U: dict[str, list[float]] = {
    "ips": [0.6, 0.3, 0.05, 0.03, 0.01, 0.01],
    "cooc": [0.25, 0.35, 0.4],
    "device_time": [0.05, 0.02, 0.02, 0.05, 0.03, 0.03, 0.4, 0.2, 0.2, 0.0],
    "hour": [0.7, 0.2, 0.05, 0.05],
    "domain": [0.7, 0.12, 0.13, 0.05],
}
#: Prior match share of the candidate pairs.
PRIOR_LAMBDA = 0.1


def fellegi_sunter_em(
    patterns: dict[str, np.ndarray],
    counts: np.ndarray,
    *,
    levels: dict[str, int],
    iterations: int = 50,
    tol: float = 1e-6,
    prior_m: dict[str, list[float]] | None = None,
    prior_u: dict[str, list[float]] | None = None,
    prior_lambda: float = PRIOR_LAMBDA,
    fit: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fellegi-Sunter EM over pattern counts; posterior match probability per pattern.

    Parameters
    ----------
    patterns
        Feature name -> integer level per distinct pattern (all arrays of one length).
    counts
        Number of candidate pairs per pattern.
    levels
        Feature name -> number of levels.
    iterations, tol
        EM stops after ``iterations`` or when lambda moves less than ``tol``.
    prior_m, prior_u, prior_lambda
        Start values (and the model itself when ``fit`` is false).
    fit
        Run EM; otherwise score with the priors.

    Returns
    -------
    posterior, params
        Posterior match probability per pattern; the fitted lambda, m and u (JSON-able).
    """
    prior_m = prior_m or PRIOR_M
    prior_u = prior_u or PRIOR_U
    eps = 1e-4

    def norm(v: list[float] | np.ndarray, n: int) -> np.ndarray:
        a = np.asarray(v, dtype=float)[:n] + eps
        return a / a.sum()

    m = {f: norm(prior_m[f], n) for f, n in levels.items()}
    u = {f: norm(prior_u[f], n) for f, n in levels.items()}
    lam = float(prior_lambda)
    n = counts.astype(float)
    its = 0

    def posterior() -> np.ndarray:
        lm = np.full(n.shape, math.log(lam))
        lu = np.full(n.shape, math.log(1.0 - lam))
        for f in levels:
            lm = lm + np.log(m[f][patterns[f]])
            lu = lu + np.log(u[f][patterns[f]])
        return 1.0 / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))

    if fit and n.sum() > 0:
        for its in range(1, iterations + 1):  # noqa: B007 - its reported below
            w = posterior()
            nw, nu = n * w, n * (1.0 - w)
            new_lam = float(np.clip(nw.sum() / n.sum(), 1e-6, 1 - 1e-6))
            for f, k in levels.items():
                # Laplace smoothing (one pseudo-pair per level) keeps empty levels finite.
                m[f] = (np.bincount(patterns[f], weights=nw, minlength=k) + 1.0) / (nw.sum() + k)
                u[f] = (np.bincount(patterns[f], weights=nu, minlength=k) + 1.0) / (nu.sum() + k)
            done = abs(new_lam - lam) < tol
            lam = new_lam
            if done:
                break
    params = {
        "lambda": round(lam, 6),
        "iterations": its,
        "fitted": bool(fit and n.sum() > 0),
        "m": {f: [round(float(x), 5) for x in v] for f, v in m.items()},
        "u": {f: [round(float(x), 5) for x in v] for f, v in u.items()},
    }
    return posterior(), params


def fellegi_sunter_supervised(
    patterns: dict[str, np.ndarray],
    matches: np.ndarray,
    non_matches: np.ndarray,
    *,
    levels: dict[str, int],
    sample_fraction: float,
) -> dict[str, Any]:
    """m, u and lambda estimated from labelled candidate pairs.

    Parameters
    ----------
    patterns
        Feature name -> level per distinct pattern.
    matches, non_matches
        Labelled candidate pairs per pattern whose two identifiers belong to the same
        person / to different persons.
    levels
        Feature name -> number of levels.
    sample_fraction
        Share of persons in the training sample. Both identifiers of a labelled pair
        must be drawn: a true pair is labelled with probability ``f`` (its one person
        drawn), a false pair with ``f**2`` (two persons drawn), so among labelled pairs
        true ones are over-represented by ``1 / f``. The match share ``lambda`` is
        corrected for that; m and u (distributions within each class) are not biased.

    Returns
    -------
    dict
        ``m``, ``u`` (feature -> probability per level, Laplace-smoothed with one
        pseudo-pair per level) and ``lambda``.
    """
    f = float(sample_fraction)
    n_m, n_u = float(matches.sum()), float(non_matches.sum())
    m = {
        feat: (np.bincount(patterns[feat], weights=matches, minlength=k) + 1.0) / (n_m + k)
        for feat, k in levels.items()
    }
    u = {
        feat: (np.bincount(patterns[feat], weights=non_matches, minlength=k) + 1.0) / (n_u + k)
        for feat, k in levels.items()
    }
    true_pairs, false_pairs = n_m / f, n_u / (f * f)
    lam = float(np.clip(true_pairs / max(true_pairs + false_pairs, 1e-12), 1e-6, 1 - 1e-6))
    return {"m": m, "u": u, "lambda": lam}
