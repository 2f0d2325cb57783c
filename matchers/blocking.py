"""Blocking passes shared by the probabilistic matchers.

Splink's prediction rules (:func:`matchers.splink_settings.prediction_rules`) and the
recordlinkage matcher's default indexer start from the same passes, so the two are
compared on the same core of candidate pairs; Splink adds identifier and prefix rules on
top.
"""

from __future__ import annotations

__all__ = ["PAIR_BLOCKS"]

#: Equi-join blocking passes, in priority order: pairs of fields, so that one typo does
#: not lose a true pair, or one near-unique identifier alone. None joins on a single
#: low-cardinality field (a street, a city), whose blocks grow with the square of the
#: data. A caller keeps the passes whose columns all exist.
PAIR_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("given_name", "family_name"),
    ("family_name", "dob"),
    ("given_name", "dob"),
    ("postcode", "family_name"),
    ("postcode", "given_name"),
    ("postcode", "dob"),
    ("dob", "city"),
    ("street", "house_number"),
    ("postcode", "house_number"),
    ("email",),
    ("phone",),
)
