"""Built-in Splink settings for the canonical idbench columns, as plain data.

:func:`default_settings` turns the columns present in a records view into an idiomatic
Fellegi-Sunter model specification (a Splink settings dict, JSON-able), and
:func:`default_training_rules` picks blocking rules for the EM training sessions so that
every comparison is estimated in at least one session. Both are pure functions of the
column names and types, so the settings a run used can be stored and re-read.

Users override any key of the built-in dict through ``SplinkMatcher(settings=...)``;
:func:`load_settings` reads theirs, :func:`is_trained` tells a saved model, and
:func:`check_dialect` refuses a model saved on another engine than the run's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import splink.comparison_library as cl
from splink import SettingsCreator, block_on

from matchers.blocking import PAIR_BLOCKS

__all__ = [
    "DIALECTS",
    "ID_COLUMNS",
    "PII_COLUMNS",
    "check_dialect",
    "default_settings",
    "default_training_rules",
    "deterministic_rules",
    "is_trained",
    "load_settings",
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

Dialect = Literal["duckdb", "spark"]

#: The SQL dialects the built-in settings are written for: the engines idbench runs
#: Splink on (Splink's ``sql_dialect`` names).
DIALECTS: tuple[str, ...] = ("duckdb", "spark")


#: Format of a ``dob`` held as text, per dialect (``None``: Splink's default for the
#: dialect, ``%Y-%m-%d`` on DuckDB).
_DOB_FORMAT: dict[str, str | None] = {"duckdb": None, "spark": "yyyy-MM-dd"}


def _phone_digits(side: str, dialect: Dialect) -> str:
    """The phone of one side of a pair as digits only (``NULL`` when none is left).

    Digits only, so "+49 30 123" and "030-123" compare on the same footing; the last
    nine digits survive both national and international prefixes. DuckDB replaces the
    first match only unless given the ``'g'`` flag; Spark always replaces every match.
    """
    if dialect == "spark":
        return f"nullif(regexp_replace(CAST(`phone_{side}` AS STRING), '[^0-9]', ''), '')"
    return f"nullif(regexp_replace(CAST(\"phone_{side}\" AS VARCHAR), '[^0-9]', '', 'g'), '')"


def _phone_comparison(dialect: Dialect = "duckdb") -> cl.CustomComparison:
    """The phone comparison, its SQL written for ``dialect``.

    Custom levels reach the engine as written, so each dialect gets its own spelling:
    identifiers quoted with ``"`` on DuckDB and backticks on Spark (where ``"x"`` is a
    string), ``VARCHAR``/``STRING``. ``damerau_levenshtein`` is DuckDB's function and
    the name of the Spark UDF in Splink's jar.
    """
    left, right = _phone_digits("l", dialect), _phone_digits("r", dialect)
    q = "`" if dialect == "spark" else '"'
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
                "sql_condition": f"{q}phone_l{q} = {q}phone_r{q}",
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


def _comparisons(columns: Mapping[str, str], dialect: Dialect) -> list[Any]:
    """The comparisons of the built-in model for the columns present (:func:`default_settings`)."""
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
        comparisons.append(
            cl.DateOfBirthComparison(
                "dob", input_is_string=is_string, datetime_format=_DOB_FORMAT[dialect]
            )
        )
    if _present(columns, "email"):
        comparisons.append(cl.EmailComparison("email").configure(term_frequency_adjustments=True))
    if _present(columns, "phone"):
        comparisons.append(_phone_comparison(dialect))
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
    return comparisons


def default_settings(
    columns: Mapping[str, str],
    *,
    link_type: LinkType = "dedupe_only",
    dialect: Dialect = "duckdb",
) -> dict[str, Any]:
    """Return a Splink settings dict for the canonical columns present.

    Parameters
    ----------
    columns
        Column name -> SQL type of the records view.
    link_type
        Splink link type; for ``link_only``/``link_and_dedupe`` the ``source`` column
        names the dataset a record comes from.
    dialect
        SQL dialect of the engine Splink runs on (:data:`DIALECTS`): the SQL of the
        comparisons and blocking rules is written for it.

    Returns
    -------
    dict
        A serialised Splink settings dict (``comparisons`` and blocking rules as plain
        data).

    Raises
    ------
    ValueError
        When no known PII column is present, or the dialect is not one of
        :data:`DIALECTS`.

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

    A ``dob`` held as text is parsed as ``YYYY-MM-DD``, in each dialect's notation
    (strftime's ``%Y-%m-%d`` on DuckDB, Java's ``yyyy-MM-dd`` on Spark).
    """
    if dialect not in DIALECTS:
        msg = f"splink settings: dialect must be one of {DIALECTS}, got {dialect!r}"
        raise ValueError(msg)
    comparisons = _comparisons(columns, dialect)
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
    return creator.create_settings_dict(dialect)


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


# -- the user's settings ----------------------------------------------------------------


def load_settings(settings: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """Return a private copy of the user's settings (dict or path to a JSON file)."""
    if settings is None:
        return {}
    if isinstance(settings, Mapping):
        return copy.deepcopy(dict(settings))
    path = Path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        msg = f"splink: cannot read settings JSON {path}: {exc}"
        raise ValueError(msg) from exc
    if not isinstance(data, dict):
        msg = f"splink: settings file {path} must hold a JSON object, got {type(data).__name__}"
        raise ValueError(msg)
    return data


def check_dialect(settings: Mapping[str, Any], dialect: str) -> None:
    """Refuse settings whose SQL was written for another engine than the run's.

    A model saved by Splink names the dialect its SQL is written in (``sql_dialect``).
    Splink passes that SQL to the engine as it is, and the dialects disagree in ways
    that do not always fail loudly: ``"given_name_l" = "given_name_r"`` compares two
    column names on DuckDB and two constant strings on Spark (always false). Settings
    without ``sql_dialect`` are taken as written for the run's engine.

    Raises
    ------
    ValueError
        When ``settings["sql_dialect"]`` names another dialect than ``dialect``.
    """
    written_for = settings.get("sql_dialect")
    if written_for is not None and written_for != dialect:
        msg = (
            f"splink: the settings' SQL is written for {written_for} "
            f"(sql_dialect={written_for!r}) and this run's engine speaks {dialect}; "
            f"save the model from a run on {dialect}, or run on {written_for}"
        )
        raise ValueError(msg)


def is_trained(settings: Mapping[str, Any]) -> bool:
    """Whether the settings are a saved model: m and u values present on the levels.

    A model saved by Splink leaves m (or u) empty for levels never observed in
    training; those fall back to Splink's defaults, so presence anywhere is the test.
    """
    comparisons = settings.get("comparisons") or []
    if not comparisons or not all(isinstance(c, Mapping) for c in comparisons):
        return False
    levels = [
        level
        for comparison in comparisons
        for level in comparison.get("comparison_levels", [])
        if not level.get("is_null_level")
    ]
    has_m = any(level.get("m_probability") is not None for level in levels)
    has_u = any(level.get("u_probability") is not None for level in levels)
    return has_m and has_u
