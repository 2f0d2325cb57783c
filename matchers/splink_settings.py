"""Built-in Splink settings for the canonical idbench columns, as plain data.

:func:`default_settings` turns the columns present in a records view into an idiomatic
Fellegi-Sunter model specification (a Splink settings dict, JSON-able), and
:func:`default_training_rules` picks blocking rules for the EM training sessions so that
every comparison is estimated in at least one session. Both are pure functions of the
column names and types, so the settings a run used can be stored and re-read.

Users override any key of the built-in dict through ``SplinkMatcher(settings=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import splink.comparison_library as cl
from splink import SettingsCreator, block_on

from matchers.blocking import PAIR_BLOCKS

__all__ = [
    "ID_COLUMNS",
    "PII_COLUMNS",
    "default_settings",
    "default_training_rules",
    "deterministic_rules",
    "prediction_rules",
]

LinkType = Literal["dedupe_only", "link_only", "link_and_dedupe"]

#: First-party identifiers compared for exact equality when present (``card_token``: the
#: tokenised payment card of point-of-sale records, their only link to a person).
ID_COLUMNS: tuple[str, ...] = ("customer_no", "loyalty_id", "account_id", "card_token")

#: Columns the built-in model knows how to compare (see docs/dataset-layout.md).
PII_COLUMNS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "dob",
    "email",
    "phone",
    "street",
    "house_number",
    "postcode",
    "city",
    *ID_COLUMNS,
)

# Digits only, so "+49 30 123" and "030-123" compare on the same footing; the last nine
# digits survive both national and international prefixes.
_PHONE = "nullif(regexp_replace(CAST(\"phone_{side}\" AS VARCHAR), '[^0-9]', '', 'g'), '')"


def _phone_comparison() -> cl.CustomComparison:
    left, right = _PHONE.format(side="l"), _PHONE.format(side="r")
    return cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            {
                "sql_condition": f"{left} IS NULL OR {right} IS NULL",
                "label_for_charts": "phone is null",
                "is_null_level": True,
            },
            {
                # the same string: an exact level Splink recognises, so it can weigh a
                # phone shared by hundreds (a shop's, a call centre's) by its frequency
                "sql_condition": '"phone_l" = "phone_r"',
                "label_for_charts": "exact match",
                "tf_adjustment_column": "phone",
                "tf_adjustment_weight": 1.0,
            },
            {"sql_condition": f"{left} = {right}", "label_for_charts": "exact digits"},
            {
                "sql_condition": f"length({left}) >= 9 AND right({left}, 9) = right({right}, 9)",
                "label_for_charts": "last 9 digits equal",
            },
            {
                "sql_condition": f"damerau_levenshtein({left}, {right}) <= 1",
                "label_for_charts": "one edit apart",
            },
            {"sql_condition": "ELSE", "label_for_charts": "all other"},
        ],
    )


def _present(columns: Mapping[str, str] | Sequence[str], *names: str) -> bool:
    return all(n in columns for n in names)


def default_settings(
    columns: Mapping[str, str],
    *,
    link_type: LinkType = "dedupe_only",
) -> dict[str, Any]:
    """Return a Splink settings dict for the canonical columns present.

    Parameters
    ----------
    columns
        Column name -> SQL type of the records view.
    link_type
        Splink link type; for ``link_only``/``link_and_dedupe`` the ``source`` column
        names the dataset a record comes from.

    Returns
    -------
    dict
        A serialised Splink settings dict (``comparisons`` and blocking rules as plain
        data).

    Raises
    ------
    ValueError
        When no known PII column is present.

    Notes
    -----
    Names use Jaro-Winkler levels with term-frequency adjustments (a match on "Smith"
    is weaker evidence than on "Vandersloot"); ``dob`` uses the date-of-birth levels
    (typo, month, year, decade); email the username/domain levels; phone compares
    digits only; postcode, house number and city are exact with term frequencies,
    street Jaro-Winkler. The exact levels of e-mail, phone and the identifiers carry
    term-frequency adjustments too: shared and junk values (one e-mail on 231 profiles
    at 1M records, on 713 at 3M: the group grows with the data) would otherwise count
    as strong as a private one, and such a group links all its records into one
    cluster. Prediction blocking: see :func:`prediction_rules`.
    """
    comparisons: list[Any] = []
    if _present(columns, "given_name"):
        comparisons.append(
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True)
        )
    if _present(columns, "family_name"):
        comparisons.append(
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True)
        )
    if _present(columns, "dob"):
        is_string = "CHAR" in columns["dob"].upper() or "STRING" in columns["dob"].upper()
        comparisons.append(cl.DateOfBirthComparison("dob", input_is_string=is_string))
    if _present(columns, "email"):
        comparisons.append(cl.EmailComparison("email").configure(term_frequency_adjustments=True))
    if _present(columns, "phone"):
        comparisons.append(_phone_comparison())
    if _present(columns, "street"):
        comparisons.append(cl.JaroWinklerAtThresholds("street", [0.9, 0.7]))
    if _present(columns, "house_number"):
        comparisons.append(cl.ExactMatch("house_number").configure(term_frequency_adjustments=True))
    if _present(columns, "postcode"):
        comparisons.append(
            cl.DamerauLevenshteinAtThresholds("postcode", [1]).configure(
                term_frequency_adjustments=True
            )
        )
    if _present(columns, "city"):
        comparisons.append(cl.ExactMatch("city").configure(term_frequency_adjustments=True))
    comparisons.extend(
        cl.ExactMatch(c).configure(term_frequency_adjustments=True)
        for c in ID_COLUMNS
        if c in columns
    )

    rules = prediction_rules(columns)
    creator = SettingsCreator(
        link_type=link_type,
        unique_id_column_name="record_id",
        source_dataset_column_name="source",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    if not comparisons:
        msg = f"no known PII column among {sorted(columns)} (known: {', '.join(PII_COLUMNS)})"
        raise ValueError(msg)
    return creator.create_settings_dict("duckdb")


def prediction_rules(columns: Mapping[str, str] | Sequence[str]) -> list[Any]:
    """Blocking rules for prediction, in priority order, for the columns present.

    A union of equi-joins on pairs of fields, so that one typo does not lose a true
    pair, plus prefix rules for typos in both fields of a pair. Every rule joins on at
    least two fields or on one near-unique identifier (e-mail, phone, ids): no rule
    joins on a single low-cardinality field (a street, a city, a name prefix), whose
    blocks grow with the square of the data. At 1M records the whole set admits about
    8M pairs; the matcher's ``max_comparisons`` budget is the guard for data where a
    rule still explodes (a junk e-mail shared by thousands of records).
    """
    pairs_of_fields = (*PAIR_BLOCKS, *((c,) for c in ID_COLUMNS))
    rules: list[Any] = [block_on(*cols) for cols in pairs_of_fields if _present(columns, *cols)]
    # Typos hit every field sooner or later: prefixes and swapped name parts recover
    # true pairs that no exact pair of fields admits (on FEBRL4: blocking recall 0.997).
    # Name prefixes alone make blocks of thousands at 1M ("Mar"+"Smi"), so they are
    # combined with the first character of the postcode when there is one.
    if _present(columns, "given_name", "family_name"):
        area = ("substr(postcode, 1, 1)",) if _present(columns, "postcode") else ()
        rules.append(block_on("substr(given_name, 1, 3)", "substr(family_name, 1, 3)", *area))
        rules.append("l.given_name = r.family_name AND l.family_name = r.given_name")
    if _present(columns, "street", "house_number"):
        area = ("substr(postcode, 1, 1)",) if _present(columns, "postcode") else ()
        rules.append(block_on("house_number", "substr(street, 1, 3)", *area))
    return rules


def default_training_rules(columns: Sequence[str]) -> list[list[str]]:
    """Blocking columns for EM sessions, chosen so every field is estimated at least once.

    A session cannot estimate the comparisons on the columns it blocks on, so rules are
    taken greedily from a preference list until each present PII column is outside at
    least one chosen rule. Every candidate joins on two fields or on a near-unique one,
    so a session's pairs stay bounded at scale (``dob`` alone pairs everyone born on
    the same day: ~14M pairs per million records); the matcher additionally caps each
    session with Splink's ``max_pairs`` sampling.
    """
    present = [c for c in PII_COLUMNS if c in columns]
    # Blocks whose size does not grow with the data come first: an e-mail, a phone, a
    # postcode (persons per postcode stay the same as the sample grows). A block on a
    # name (or a birthday) alone grows with the sample, so its pairs grow with its
    # square (the name session had 0.77M pairs at 1M records and 6.1M at 3M); the share
    # of true matches among them then falls, and EM, run on a sample of them, learns a
    # different model at each size (at 3M it took households for matches).
    candidates = [
        ["email"],
        ["dob", "postcode"],
        ["phone"],
        ["postcode", "house_number"],
        ["given_name", "family_name", "postcode"],
        ["given_name", "family_name"],
        ["family_name", "dob"],
    ]
    usable = [r for r in candidates if all(c in columns for c in r)]
    chosen: list[list[str]] = []
    uncovered = set(present)
    for rule in usable:
        if not uncovered:
            break
        if uncovered - set(rule):
            chosen.append(rule)
            uncovered &= set(rule)
    return chosen


def deterministic_rules(columns: Sequence[str]) -> list[list[str]]:
    """Near-certain match rules used to estimate the prior match probability."""
    # Each rule needs a personal field besides the shared one: a junk or family e-mail
    # links strangers, and the groups it makes grow with the data, so "same e-mail"
    # alone would raise the prior with the sample (4.5e-6 at 1M records, 3.6e-6 at 3M,
    # where a constant number of matches per record gives 1.5e-6).
    rules = [
        ["given_name", "family_name", "dob"],
        ["email", "given_name"],
        ["given_name", "family_name", "postcode"],
    ]
    return [r for r in rules if all(c in columns for c in r)]
