"""Identifier normalisation shared by the deterministic matchers.

Every function here returns a SQL *expression* (DuckDB dialect) that turns a raw column
into its normalised key, or ``NULL`` when the raw value carries no evidence (empty,
malformed). Keys are compared for equality only, so normalisation decides what "the same
identifier" means:

- e-mails: lower case, spaces removed, must look like ``local@domain.tld``;
  optionally (``canonical=True``) provider-specific canonical forms: ``+tag`` suffixes are
  dropped for every provider and dots in the local part for Gmail/Googlemail, whose
  servers ignore them (``googlemail.com`` becomes ``gmail.com``);
- phones: E.164 (``+<country code><national number>``). Two implementations:

  * :func:`phone_sql` - pure SQL rules whose parameters (country code, trunk prefix,
    international prefix, possible national lengths) are read from the ``phonenumbers``
    metadata of a default region. Runs inside the query plan at engine speed.
  * :func:`phone_map_phonenumbers` - the ``phonenumbers`` library itself, applied to the
    DISTINCT raw values only (batched, results joined back). Exact for every region's
    numbering plan, but ``phonenumbers.parse`` runs at ~80k values/s on one core here:
    a phone-only cascade over 1M synthetic records took 21.4 s with the library and
    1.2 s with the SQL rules (same partition). The SQL rules are therefore the default and
    the library is the reference the tests compare them against.

- names: lower case, accents stripped (``strip_accents``), punctuation removed,
  whitespace collapsed to one space;
- postcodes: upper case, whitespace removed;
- dates: ``TRY_CAST(... AS DATE)``;
- other identifiers (``customer_no``, ``account_id``, ``cookie_id``...): trimmed, lower
  case, empty -> ``NULL``.

The built-in junk lists (:data:`JUNK_EMAIL_LOCALS`, :data:`JUNK_EMAILS`,
:func:`junk_sql`) describe placeholder values that production identity graphs block
(``noemail@...``, ``test@test.com``, ``0000000000``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa

from bench.api import execute, quote_ident

__all__ = [
    "JUNK_EMAILS",
    "JUNK_EMAIL_DOMAINS",
    "JUNK_EMAIL_LOCALS",
    "KEY_KINDS",
    "composite_key_sql",
    "email_base_sql",
    "email_sql",
    "identifier_sql",
    "junk_sql",
    "key_kind",
    "key_query_sql",
    "lower_trim_sql",
    "name_sql",
    "normalise_sql",
    "phone_digits_sql",
    "phone_map_phonenumbers",
    "phone_sql",
    "postcode_sql",
]

log = logging.getLogger(__name__)

#: Which normaliser applies to a canonical column name (``docs/dataset-layout.md``);
#: any other column is treated as an opaque identifier.
KEY_KINDS: dict[str, str] = {
    "email": "email",
    "phone": "phone",
    "given_name": "name",
    "middle_name": "name",
    "family_name": "name",
    "city": "name",
    "street": "name",
    "postcode": "postcode",
    "dob": "date",
}

#: Local parts that mean "the customer would not give an address" (exact match).
JUNK_EMAIL_LOCALS: tuple[str, ...] = (
    "noemail",
    "no.email",
    "no_email",
    "nomail",
    "none",
    "no",
    "na",
    "n/a",
    "null",
    "unknown",
    "noreply",
    "no-reply",
    "donotreply",
    "test",
    "dummy",
    "fake",
    "asdf",
    "xxx",
)
#: Domains typed as placeholders. The RFC 2606 ``example.*`` domains are deliberately
#: absent: synthetic generators (ours included) use them for real-looking addresses.
JUNK_EMAIL_DOMAINS: tuple[str, ...] = (
    "test.com",
    "noemail.com",
    "none.com",
    "invalid",
)
#: Whole addresses seen as placeholders.
JUNK_EMAILS: tuple[str, ...] = ("a@a.com", "x@x.com", "email@email.com", "test@test.de")


def key_kind(column: str) -> str:
    """Normaliser kind for a column name: ``email``, ``phone``, ``name``, ... or ``id``."""
    return KEY_KINDS.get(column, "id")


def _str(expr: str) -> str:
    return f"CAST({expr} AS VARCHAR)"


def _ascii_sql(s: str) -> str:
    """SQL condition: ``s`` is all ASCII (as many bytes as characters)."""
    return f"strlen({s}) = length({s})"


def lower_trim_sql(expr: str) -> str:
    """``lower(trim(expr))``, the trim skipped where it cannot change the value.

    DuckDB's ``trim`` strips the Unicode space separators (category Zs) from both ends
    and copies every value: on 3M e-mails it cost 0.34 s against 0.10 s for ``lower``.
    On an all-ASCII value the only such separator is the space, so a value that neither
    starts nor ends with one is already trimmed; every other value still goes through
    ``trim``. Same result for every input, a third of the cost on clean data.
    """
    s = _str(expr)
    clean = f"{_ascii_sql(s)} AND NOT ({s} LIKE ' %' OR {s} LIKE '% ')"
    return f"(CASE WHEN {clean} THEN lower({s}) ELSE lower(trim({s})) END)"


def email_base_sql(expr: str) -> str:
    """Lower case, spaces removed: the part of :func:`email_sql` worth computing once.

    On all-ASCII values ``trim`` is skipped: it could only strip spaces, which the
    ``replace`` removes anyway (see :func:`lower_trim_sql`).
    """
    s = _str(expr)
    return (
        f"(CASE WHEN {_ascii_sql(s)} THEN replace(lower({s}), ' ', '') "
        f"ELSE replace(lower(trim({s})), ' ', '') END)"
    )


def email_sql(expr: str, *, canonical: bool = False, base: str | None = None) -> str:
    """SQL expression normalising an e-mail address.

    Parameters
    ----------
    expr
        SQL expression of the raw value (already quoted if it is a column).
    canonical
        Also drop ``+tag`` suffixes (all providers) and local-part dots for
        ``gmail.com``/``googlemail.com`` (mapped to ``gmail.com``).

    Returns
    -------
    str
        Expression yielding the normalised address, or ``NULL`` unless it has the shape
        ``local@domain.tld`` (one ``@``, non-empty local part, a dot after the ``@``).
    """
    # Plain string functions, not regular expressions: ~5x cheaper at 10M values.
    # Internal whitespace other than spaces (tabs, newlines) is not removed.
    e = base if base is not None else email_base_sql(expr)
    valid = f"({e} LIKE '_%@_%._%' AND {e} NOT LIKE '%@%@%')"
    if not canonical:
        return f"(CASE WHEN {valid} THEN {e} END)"
    # Split once, rebuild once; the dot rule applies to Gmail only because other
    # providers treat dots as significant.
    local = f"split_part(split_part({e}, '@', 1), '+', 1)"
    domain = f"replace(split_part({e}, '@', 2), 'googlemail.com', 'gmail.com')"
    canon = (
        f"CASE WHEN {domain} = 'gmail.com' THEN replace({local}, '.', '') ELSE {local} END"
        f" || '@' || {domain}"
    )
    return f"(CASE WHEN {valid} AND {local} <> '' THEN {canon} END)"


def _region_metadata(region: str) -> tuple[str, str, str, list[int]]:
    """(country code, trunk prefix, international prefix, national lengths) of a region."""
    from phonenumbers import PhoneMetadata

    md = PhoneMetadata.metadata_for_region(region.upper())
    if md is None:
        msg = f"unknown phone region {region!r}: use an ISO 3166 alpha-2 code such as 'US', 'GB'"
        raise ValueError(msg)
    intl = md.international_prefix or "00"
    if not intl.isdigit():  # a pattern such as 0(?:0|11): fall back to the common "00"
        intl = "00"
    lengths = sorted(int(n) for n in md.general_desc.possible_length if n > 0)
    return str(md.country_code), md.national_prefix or "", intl, lengths


def phone_digits_sql(expr: str) -> str:
    """SQL expression keeping only the digits of a raw phone value.

    One regular expression. Measured alternatives were no faster at 10M values on 2
    cores: a chain of ``replace`` calls for common separators plus a digits-only check
    (the check costs what it saves), ``translate`` with every non-digit character (10x
    slower), ``TRY_CAST`` as a check (accepts ``1e5``, ``0x1F``, ``1_000``).
    """
    return f"regexp_replace({_str(expr)}, '[^0-9]', '', 'g')"


def phone_sql(expr: str, *, region: str = "US", digits: str | None = None) -> str:
    """SQL expression normalising a phone number to E.164 (pure SQL rules).

    Rules, in order, on the digits of the raw value (every non-digit removed):

    1. raw value starts with ``+``: ``+`` followed by the digits;
    2. digits start with the region's international prefix (``00``, ``011``): the rest;
    3. digits start with the region's trunk prefix and the remainder has a possible
       national length: country code + remainder;
    4. digits have a possible national length: country code + digits;
    5. digits start with the country code and the rest has a possible national length:
       ``+`` + digits.

    Anything else, and any result outside 8-15 digits, is ``NULL`` (not evidence).
    Country code, prefixes and lengths come from the ``phonenumbers`` metadata of
    ``region``, so the rules follow the library for the default region.

    ``digits`` names an already computed :func:`phone_digits_sql` column: DuckDB does
    not share sub-expressions across ``CASE`` branches, so computing the digits once in
    an inner projection halves the cost (the regex dominates: ~2 s per 10M values here).
    """
    cc, trunk, intl, lengths = _region_metadata(region)
    lens = ", ".join(str(n) for n in lengths)
    r = _str(expr)
    d = digits if digits is not None else phone_digits_sql(expr)

    def e164(value: str, length: str) -> str:
        # Each rule checks the length of its own result, so no rule's result is
        # computed twice (DuckDB evaluates a CASE expression once per reference).
        return f"CASE WHEN {length} BETWEEN 8 AND 15 THEN '+' || {value} END"

    with_cc = f"'{cc}' || {d}"
    trunk_rule = ""
    if trunk:
        national = f"'{cc}' || substr({d}, {len(trunk) + 1})"
        trunk_rule = (
            f"WHEN starts_with({d}, '{trunk}') AND length({d}) - {len(trunk)} IN ({lens}) "
            f"THEN {e164(national, f'length({d}) - {len(trunk) - len(cc)}')} "
        )
    after_intl = f"substr({d}, {len(intl) + 1})"
    return (
        f"(CASE WHEN starts_with(ltrim({r}), '+') THEN {e164(d, f'length({d})')} "
        f"WHEN starts_with({d}, '{intl}') "
        f"THEN {e164(after_intl, f'length({d}) - {len(intl)}')} "
        f"{trunk_rule}"
        f"WHEN length({d}) IN ({lens}) THEN {e164(with_cc, f'length({d}) + {len(cc)}')} "
        f"WHEN starts_with({d}, '{cc}') AND length({d}) - {len(cc)} IN ({lens}) "
        f"THEN {e164(d, f'length({d})')} "
        "END)"
    )


def phone_map_phonenumbers(
    con: duckdb.DuckDBPyConnection,
    source_sql: str,
    target: str,
    *,
    region: str = "US",
    batch_size: int = 100_000,
) -> int:
    """Normalise DISTINCT raw phones with ``phonenumbers``; store ``(raw, e164)``.

    Parameters
    ----------
    con
        Connection holding the records.
    source_sql
        Query returning one VARCHAR column of raw phone values (duplicates allowed).
    target
        Name of the table to create (namespaced by the caller).
    region
        Default region for numbers written without a country code.
    batch_size
        Distinct values read and converted per batch (bounds memory).

    Returns
    -------
    int
        Number of distinct raw values normalised.
    """
    import phonenumbers

    fmt = phonenumbers.PhoneNumberFormat.E164

    def one(raw: str) -> str | None:
        try:
            num = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            return None
        return (
            phonenumbers.format_number(num, fmt) if phonenumbers.is_possible_number(num) else None
        )

    execute(
        con,
        f"CREATE OR REPLACE TABLE {quote_ident(target)} (raw VARCHAR, e164 VARCHAR)",
        step="phone map",
    )
    distinct = con.sql(
        f"SELECT DISTINCT CAST(v AS VARCHAR) AS raw FROM ({source_sql}) t(v) WHERE v IS NOT NULL"
    ).to_arrow_table()
    n = distinct.num_rows
    for start in range(0, n, batch_size):
        raws = distinct.column("raw").slice(start, batch_size).to_pylist()
        batch = pa.table({"raw": raws, "e164": list(map(one, raws))})
        con.register(f"{target}_batch", batch)
        try:
            execute(
                con,
                f"INSERT INTO {quote_ident(target)} SELECT raw, e164 FROM {quote_ident(target + '_batch')}",
                step="phone map insert",
            )
        finally:
            con.unregister(f"{target}_batch")
    log.debug("phonenumbers normalised %d distinct raw phones", n)
    return n


def name_sql(expr: str) -> str:
    """Lower case, accents stripped, punctuation removed, whitespace collapsed.

    A value of ASCII letters only is just lower-cased: every other step leaves it as it
    is. Checking that (one match) costs half of the two replacing regular expressions
    and ``strip_accents`` it spares: on 429k given and family names, 0.15 s instead of
    0.33 s on 2 cores.
    """
    s = _str(expr)
    full = (
        "NULLIF(trim(regexp_replace(regexp_replace(strip_accents(lower("
        f"{s})), '[^\\p{{L}}\\p{{N}}\\s]', '', 'g'), '\\s+', ' ', 'g')), '')"
    )
    # regexp_matches with anchors, not regexp_full_match: it has a Spark translation
    # (RLIKE); \\z, not $, which in Java also matches before a final newline.
    return f"(CASE WHEN regexp_matches({s}, '^[A-Za-z]+\\z') THEN lower({s}) ELSE {full} END)"


def postcode_sql(expr: str) -> str:
    """Upper case, whitespace removed."""
    return f"NULLIF(regexp_replace(upper({_str(expr)}), '\\s+', '', 'g'), '')"


def date_sql(expr: str) -> str:
    """A date (``TRY_CAST``: unparseable values become ``NULL``)."""
    return f"TRY_CAST({expr} AS DATE)"


def identifier_sql(expr: str) -> str:
    """Opaque identifier: trimmed, lower case, empty -> ``NULL``."""
    return f"NULLIF({lower_trim_sql(expr)}, '')"


def composite_key_sql(columns: Sequence[str]) -> str:
    """One VARCHAR that is equal for two rows exactly when all ``columns`` are.

    Each value is written as its length, ``:`` and its text (so no separator inside a
    value can fake a column boundary), and the pieces are joined with ``||``, which
    makes the key NULL as soon as one column is: a rule links only records that carry
    all its columns. The columns are normalised keys: VARCHAR, or DATE (whose text is
    one-to-one).
    """
    parts = []
    for col in columns:
        text = f"CAST({col} AS VARCHAR)"
        parts.append(f"CAST(length({text}) AS VARCHAR) || ':' || {text}")
    return " || ".join(f"({p})" for p in parts)


def key_query_sql(source: str, columns: Sequence[str], *, one_text_column: bool) -> str:
    """``SELECT record_id, key`` over ``source``, a query of ``record_id`` and ``columns``.

    The key is the column itself when there is one and it is text
    (``one_text_column``), else :func:`composite_key_sql` of the columns, read from a
    materialised ``source`` (the composite names each column twice: normalise it once).
    No ``WHERE key IS NOT NULL``: DuckDB pushes such a filter into the scan and
    normalises every key twice.
    """
    if len(columns) == 1 and one_text_column:
        return f"SELECT record_id, {columns[0]} AS key FROM ({source})"
    key = composite_key_sql(columns)
    return f"WITH __keys AS MATERIALIZED ({source}) SELECT record_id, {key} AS key FROM __keys"


def normalise_sql(
    column: str,
    *,
    expr: str | None = None,
    email_canonical: bool = False,
    phone_region: str = "US",
) -> str:
    """Normalising SQL expression for a canonical column name.

    Parameters
    ----------
    column
        Canonical column name (``email``, ``phone``, ``family_name``...).
    expr
        SQL expression to normalise; default: the quoted column.
    email_canonical, phone_region
        Passed to :func:`email_sql` / :func:`phone_sql`.
    """
    src = expr if expr is not None else quote_ident(column)
    kind = key_kind(column)
    makers: dict[str, Callable[[str], str]] = {
        "email": lambda e: email_sql(e, canonical=email_canonical),
        "phone": lambda e: phone_sql(e, region=phone_region),
        "name": name_sql,
        "postcode": postcode_sql,
        "date": date_sql,
        "id": identifier_sql,
    }
    return makers[kind](src)


def _in_list(expr: str, values: tuple[str, ...]) -> str:
    return f"{expr} IN (" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def junk_sql(column: str, key: str) -> str | None:
    """Predicate that is true when the *normalised* ``key`` of ``column`` is junk.

    E-mails: a placeholder local part (``noemail@...``), a placeholder domain
    (``test.com``) or a listed address. Phones: the last seven digits all equal
    (``0000000``, ``9999999``) or a counting sequence (``123456789``). Other columns have
    no built-in junk list (``None``); use ``exclude_values`` for them.
    """
    kind = key_kind(column)
    if kind == "email":
        return (
            f"({_in_list(f'split_part({key}, {chr(39)}@{chr(39)}, 1)', JUNK_EMAIL_LOCALS)}"
            f" OR {_in_list(f'split_part({key}, {chr(39)}@{chr(39)}, 2)', JUNK_EMAIL_DOMAINS)}"
            f" OR {_in_list(key, JUNK_EMAILS)})"
        )
    if kind == "phone":
        return (
            f"(replace(right({key}, 7), right({key}, 1), '') = ''"
            f" OR right({key}, 9) IN ('123456789', '987654321', '012345678'))"
        )
    return None
