"""Splink on the run's Spark session: the similarity functions and a checkpoint folder per run.

Imported only when a run's engine is Spark (it needs pyspark, the ``[spark]`` extra).

**Similarity functions.** Splink's Spark backend compares strings with Scala UDFs
(``jaro_winkler``, ``damerau_levenshtein``, ``jaro_sim``...) shipped as a jar with
Splink (``similarity_jar_location()``). ``SparkAPI`` registers them itself
(``register_udfs_automatically``), but only when the jar is on the session's classpath;
otherwise it logs a warning and the first comparison fails. A session started with
``spark.jars`` pointing at the jar has it; for any other session
:func:`ensure_similarity_jar` adds it with ``ADD JAR`` before Splink registers the
functions (a run of idbench started without the jar works the same, one log line
later).

**Checkpoints.** Splink breaks the lineage of its large intermediate tables (blocked
pairs, comparison vectors, predictions) by writing them as Parquet
(``break_lineage_method="parquet"``) into the Spark context's checkpoint directory.
idbench gives every Splink API its own folder under the engine's ``scratch_dir``
(:class:`IdbenchSparkAPI`), so runs sharing a session never overwrite each other's
files and the engine's own checkpoint directory is left as it is. The folder of the
linker that predicts must outlive ``match``: the harness reads the outputs, which are
views over Splink's predictions, after ``match`` returns.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from splink.backends.spark import SparkAPI, similarity_jar_location

from bench.api import Engine

__all__ = ["IdbenchSparkAPI", "ensure_similarity_jar", "spark_api"]

log = logging.getLogger(__name__)

#: A function of Splink's jar, present once the jar's UDFs are registered.
_PROBE_FUNCTION = "jaro_winkler"


class IdbenchSparkAPI(SparkAPI):
    """Splink's ``SparkAPI`` writing its lineage-breaking Parquet into ``checkpoint_dir``.

    Splink asks the Spark context for its checkpoint directory
    (``_get_checkpoint_dir_path``); this subclass answers with a folder of its own,
    so each run's intermediate tables stay apart.
    """

    def __init__(self, *, spark_session: Any, checkpoint_dir: str | Path, **kwargs: Any) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        super().__init__(spark_session=spark_session, break_lineage_method="parquet", **kwargs)

    def _get_checkpoint_dir_path(self, spark_df: Any) -> str:
        """The run's folder, made on first use (a fit that writes nothing leaves none)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        return str(self.checkpoint_dir.resolve())


def ensure_similarity_jar(spark: Any) -> str:
    """Put Splink's similarity jar on the session's classpath; say how it got there.

    Returns
    -------
    str
        ``"session"`` when the session already had it (``spark.jars`` or an earlier
        ``ADD JAR``), ``"added"`` when this call ran ``ADD JAR``.
    """
    jar = similarity_jar_location()
    listed = [str(row[0]) for row in spark.sql("LIST JARS").collect()]
    if any(entry.endswith(Path(jar).name) for entry in listed):
        return "session"
    log.info(
        "splink: the Spark session was started without Splink's similarity jar; adding "
        "it with ADD JAR (start the session with spark.jars=%s to avoid this)",
        jar,
    )
    spark.sql("ADD JAR '" + jar.replace("'", "\\'") + "'")
    return "added"


def _checkpoint_root(engine: Engine) -> Path:
    """The engine's ``scratch_dir``, or a temporary folder when it has none."""
    scratch = getattr(engine, "scratch_dir", None)
    if scratch is not None:
        return Path(scratch)
    root = Path(tempfile.gettempdir()) / "idbench-splink"
    log.info("splink: the Spark engine has no scratch_dir; Splink's checkpoints go to %s", root)
    return root


def spark_api(engine: Engine) -> IdbenchSparkAPI:
    """A Splink ``SparkAPI`` on the engine's session, with its own checkpoint folder.

    The folder is ``<scratch_dir>/splink/<8 hex digits>``, new for every call.

    Raises
    ------
    RuntimeError
        When Splink's similarity functions are still missing after registration.
    """
    spark = engine.spark  # type: ignore[attr-defined]  # SparkEngine
    ensure_similarity_jar(spark)
    folder = _checkpoint_root(engine) / "splink" / uuid.uuid4().hex[:8]
    api = IdbenchSparkAPI(spark_session=spark, checkpoint_dir=folder)
    if not spark.catalog.functionExists(_PROBE_FUNCTION):
        msg = (
            "splink: Splink's similarity functions (jaro_winkler...) are not registered "
            "in the Spark session; start it with "
            f"spark.jars={similarity_jar_location()}"
        )
        raise RuntimeError(msg)
    log.debug("splink: Spark backend with checkpoints in %s", folder)
    return api
