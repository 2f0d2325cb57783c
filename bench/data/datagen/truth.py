"""Truth tables of a generated dataset: hazard tags, identifier ownership, persons.

Written under ``truth/`` (see ``docs/dataset-layout.md``); matchers never see them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from bench.data.datagen._util import ParquetSink, day_to_ts, hex_ids
from bench.data.datagen.formats import cookie_key_rows, maid_strings, phone_format
from bench.data.datagen.world import World, is_apple

#: Hazard tags written to truth/hazards.parquet (see datasets/README.md).
HAZARDS = (
    "cgnat_ip",
    "date_error",
    "duplicate",
    "email_churn",
    "fake_name",
    "itp_cookie_reset",
    "junk_identifier",
    "moved",
    "name_change",
    "nickname",
    "office_ip",
    "public_wifi_ip",
    "recycled_phone",
    "shared_device",
    "shared_family_email",
    "swapped_name",
    "typo",
)

TRUTH_RECORDS_SCHEMA = pa.schema(
    [("record_id", pa.int64()), ("person_id", pa.int64()), ("household_id", pa.int64())]
)
HAZARDS_SCHEMA = pa.schema([("record_id", pa.int64()), ("hazard", pa.string())])
IDENTIFIERS_SCHEMA = pa.schema(
    [
        ("id_type", pa.string()),
        ("id_value", pa.string()),
        ("person_id", pa.int64()),
        ("valid_from", pa.timestamp("us")),
        ("valid_to", pa.timestamp("us")),
    ]
)


class HazardTags:
    """Hazard tags collected as (record_id, tag code) integer arrays, written sorted."""

    def __init__(self) -> None:
        self.rids: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []

    def add(self, rid: np.ndarray, masks: dict[str, np.ndarray]) -> None:
        for name, mask in masks.items():
            if name not in HAZARDS:
                msg = f"internal: hazard tag {name!r} is not declared in HAZARDS"
                raise KeyError(msg)
            sel = rid[np.asarray(mask, bool)]
            self.rids.append(sel)
            self.codes.append(np.full(len(sel), HAZARDS.index(name), np.int8))

    def frame(self) -> pl.DataFrame:
        rid = np.concatenate(self.rids) if self.rids else np.empty(0, np.int64)
        code = np.concatenate(self.codes) if self.codes else np.empty(0, np.int8)
        order = np.lexsort((code, rid))
        return pl.DataFrame(
            {
                "record_id": rid[order].astype(np.int64),
                "hazard": pl.Series(list(HAZARDS), dtype=pl.String).gather(
                    code[order].astype(np.int64)
                ),
            }
        )


def write_identifiers(
    w: World, path: Path, cookie_rows: np.ndarray | None, maid_rows: np.ndarray | None
) -> None:
    """Ownership intervals of every identifier: emails, phones, cookies, mobile ad ids."""
    sink = ParquetSink(path, IDENTIFIERS_SCHEMA)
    H = w.horizon

    def put(
        id_type: str, value: pl.Series, person: np.ndarray, t0: np.ndarray, t1: np.ndarray
    ) -> None:
        df = pl.DataFrame(
            {
                "id_type": pl.repeat(id_type, len(person), eager=True),
                "id_value": value,
                "person_id": person.astype(np.int64) + 1,
                "valid_from": day_to_ts(w.start, t0),
                "valid_to": day_to_ts(w.start, t1),
            }
        )
        sink.write(df)

    # Emails: personal rows (old value until the switch, new one after).
    personal = w.e_person >= 0
    pr = np.flatnonzero(personal)
    sw = w.e_switch[pr]
    put("email", w.e_old.gather(pr), w.e_person[pr], np.zeros(len(pr)), np.minimum(sw, H))
    ch = pr[np.isfinite(sw)]
    put("email", w.e_new.gather(ch), w.e_person[ch], w.e_switch[ch], np.full(len(ch), H))
    # Shared family addresses: one interval per adult of the household.
    sh = np.flatnonzero(~personal)
    if len(sh):
        adults = np.flatnonzero(w.p_adult)
        hh_of = w.p_hh[adults]
        rows = np.flatnonzero(np.isin(hh_of, w.e_hh[sh]))
        members = adults[rows]
        erow = w.hh_shared_email[w.p_hh[members]]
        put(
            "email", w.e_old.gather(erow), members, np.zeros(len(members)), np.full(len(members), H)
        )
    # Phones: old owner until the switch; the new number (maybe recycled) after it.
    ph = phone_format(w.ph_old, "raw")
    put("phone", ph, w.ph_person, np.zeros(len(ph)), np.minimum(w.ph_switch, H))
    c = np.flatnonzero(w.ph_new >= 0)
    put(
        "phone",
        phone_format(w.ph_new[c], "raw"),
        w.ph_person[c],
        w.ph_switch[c],
        np.full(len(c), H),
    )
    if cookie_rows is not None:
        rows = np.sort(cookie_rows)
        owner = w.d_person[w.b_device[w.c_browser[rows]]]
        put(
            "cookie",
            pl.Series(hex_ids(cookie_key_rows(w, rows))),
            owner,
            w.c_start[rows],
            w.c_end[rows],
        )
    if maid_rows is not None:
        rows = np.sort(maid_rows)
        d = w.m_device[rows]
        apple = is_apple(w.d_os[d])
        put(
            "maid",
            maid_strings(w, rows, apple),
            w.d_person[d],
            w.m_start[rows],
            w.m_end[rows],
        )
    sink.close()


def persons_frame(w: World) -> pl.DataFrame:
    """Per-person truth: household, demographics, reach flags (business metrics, slicing)."""
    return pl.DataFrame(
        {
            "person_id": np.arange(w.n_persons, dtype=np.int64) + 1,
            "household_id": w.p_hh.astype(np.int64) + 1,
            "age": w.p_age.astype(np.int32),
            "sex": pl.Series(["F", "M"], dtype=pl.String).gather(w.p_sex.astype(np.int64)),
            "given_name": w.p_given,
            "family_name": w.p_family,
            "is_customer": w.p_customer,
            "has_crm": w.p_crm,
            "has_loyalty": w.p_loyalty,
            "has_web_account": w.p_account,
            "office_id": w.p_office.astype(np.int64),
            "cookie_deletion_class": pl.Series(
                ["never", "regular", "serial"], dtype=pl.String
            ).gather(w.p_cookie_class.astype(np.int64)),
        }
    )
