"""The labelled training sample handed to matchers tagged ``needs_labels``.

A supervised matcher learns from the truth of some persons and is scored on the others.
The runner's worker draws the *training persons* from the dataset's truth with the run's
seed (:func:`training_sample`), passes their records' labels to the matcher as the
``labels`` view of its context (``record_id, entity_id``: never the rest of the truth),
and stores the training record ids next to the raw outputs
(:data:`TRAINING_RECORDS_FILE`). :func:`bench.metrics.evaluate.evaluate_run` then leaves those
records out of every metric, so the persons a matcher learnt from are never the persons
it is scored on, and ``--recompute`` re-derives the same restriction from the raw files.

Persons are drawn, not records: a person is either wholly in the training sample (all
its records labelled) or wholly evaluated. The draw is the MD5 of the person id and the
seed, so it is deterministic, independent of row order and of the DuckDB version (whose
internal ``hash()`` may change), and each person is in the sample with probability
:data:`TRAINING_FRACTION`.

What the sample reveals besides its labels: that an unlabelled record belongs to a
person *outside* the sample, so a candidate pair of a labelled and an unlabelled record
is known to be false. A matcher could use that to cut links through training records
(which the evaluation drops anyway) and so keep two evaluated records apart; the
built-in ``anonymous-supervised`` uses labelled pairs only to estimate its model. It is
the usual property of a person-level train/test split and is documented for plugin
authors in ``docs/plugins.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from bench.sql import engine

__all__ = ["TRAINING_FRACTION", "TRAINING_RECORDS_FILE", "training_sample"]

log = logging.getLogger(__name__)

#: Share of persons whose records are labelled for a supervised matcher.
TRAINING_FRACTION = 0.2
#: File in a run's raw directory listing the training records (``record_id``).
TRAINING_RECORDS_FILE = "training_records.parquet"
#: Resolution of the hash draw.
_BUCKETS = 1_000_000


def training_sample(
    truth_path: str | Path, *, seed: int, fraction: float = TRAINING_FRACTION
) -> pa.Table:
    """The labels of the records of a seeded sample of persons.

    Parameters
    ----------
    truth_path
        The dataset's ``truth/records.parquet`` (``record_id``, ``person_id``).
    seed
        The run's seed; the same seed draws the same persons.
    fraction
        Probability that a person is drawn, in ``(0, 1)``.

    Returns
    -------
    pyarrow.Table
        ``record_id`` and ``entity_id`` (the person id) of every record of a drawn
        person, sorted by ``record_id``.
    """
    if not 0.0 < float(fraction) < 1.0:
        msg = f"the training fraction must be between 0 and 1 (exclusive), got {fraction!r}"
        raise ValueError(msg)
    cut = round(float(fraction) * _BUCKETS)
    con = engine.connect(threads=1)
    try:
        engine.register_parquet(con, "truth", truth_path)
        table = engine.query(
            con,
            f"""
            SELECT CAST(record_id AS BIGINT) AS record_id, person_id AS entity_id
            FROM truth
            WHERE person_id IS NOT NULL
              AND md5_number(CAST(person_id AS VARCHAR) || ':' || '{int(seed)}')
                  % {_BUCKETS} < {cut}
            ORDER BY record_id
            """,
            step="training sample",
        )
    finally:
        con.close()
    log.info("training sample: %d labelled records (fraction %.2f)", table.num_rows, fraction)
    return table
