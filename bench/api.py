"""The matcher contract: what a matcher receives, what it returns, how it is described.

Plugin authors import from here (and from :mod:`bench.testing`), nothing else: besides
the contract, this module re-exports the SQL helpers a matcher needs (identifier
quoting, literals, statements that name their step in errors, connected components), so
a plugin can do everything the built-in matchers do. The built-in matchers import only
this module from the harness (a test checks it).

A matcher is constructed with keyword parameters only, stores them unchanged, and does
its work in :meth:`Matcher.fit` and :meth:`Matcher.match`. The harness hands it a fresh
DuckDB connection holding read-only views of the records to resolve and, where the
dataset has them, auxiliary tables. Ground truth is never in that connection, except the
``labels`` of a training sample of persons for a matcher tagged ``needs_labels``
(:mod:`bench.data.labels`; the evaluation leaves those persons out).

Example
-------
>>> class Email(BaseMatcher):
...     name = "email-only"
...     lens = "deterministic"
...     tags = frozenset({"pii"})
...     def __init__(self, *, lower: bool = True):
...         self.lower = lower
...     def match(self, ctx):
...         rel = ctx.con.sql(
...             f"SELECT record_id, lower(email) AS key FROM {quote_ident(ctx.records)}"
...         )
...         return MatchResult(clusters=rel)
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from bench.sql.duckdb_engine import DuckDBEngine
from bench.sql.engine import (
    SQLError,
    exact_sum,
    execute,
    literal,
    materialise,
    query,
    query_one,
    quote_ident,
    table_columns,
)
from bench.sql.graph import (
    CappedComponents,
    ComponentsResult,
    capped_components,
    clusters_sql,
    connected_components,
)
from bench.sql.graph_memory import (
    EdgeLinks,
    KeyLinks,
    linked_clusters,
    load_closure_kernels,
    record_clusters,
)
from bench.sql.interface import Engine, UnsupportedOnEngine

if TYPE_CHECKING:
    import duckdb
    import polars as pl
    import pyarrow as pa

    #: What a matcher may return for clusters or pairs: a DuckDB relation (lazy; the
    #: harness materialises it inside the timed region), an Arrow table, a polars frame,
    #: or the name of a table/view it created in the context's connection.
    Output = duckdb.DuckDBPyRelation | pa.Table | pl.DataFrame | str

__all__ = [
    "CLUSTER_COLUMNS",
    "KNOWN_TAGS",
    "LENSES",
    "PAIR_COLUMNS",
    "BaseMatcher",
    "CappedComponents",
    "ComponentsResult",
    "EdgeLinks",
    "Engine",
    "KeyLinks",
    "MatchContext",
    "MatchResult",
    "Matcher",
    "NoDuckDB",
    "SQLError",
    "UnsupportedInput",
    "UnsupportedOnEngine",
    "capped_components",
    "clusters_sql",
    "connected_components",
    "exact_sum",
    "execute",
    "linked_clusters",
    "literal",
    "load_closure_kernels",
    "materialise",
    "query",
    "query_one",
    "quote_ident",
    "record_clusters",
    "table_columns",
]

#: Capability tags. ``pii``: reads first-party personal fields; ``events``: reads the
#: anonymous evidence tables; ``emits_pairs``: returns scored pairs; ``needs_labels``:
#: uses a labelled training sample (``MatchContext.labels``); ``nondeterministic``: the
#: same seed may not give the same partition.
KNOWN_TAGS: frozenset[str] = frozenset(
    {"pii", "events", "emits_pairs", "needs_labels", "nondeterministic"}
)

#: The lens a matcher looks through, declared by the matcher (``Matcher.lens``) and
#: stored in every run record; reports group and mark matchers by it. ``baseline``: a
#: reference point that resolves nothing on purpose (e.g. every record alone);
#: ``deterministic``: rules on identifiers; ``probabilistic``: scored evidence;
#: ``hybrid``: both in one clustering.
LENSES: tuple[str, ...] = ("baseline", "deterministic", "probabilistic", "hybrid")

CLUSTER_COLUMNS = ("record_id", "cluster_id")
PAIR_COLUMNS = ("record_id_l", "record_id_r", "score")


class UnsupportedInput(Exception):
    """Raised by a matcher when the dataset lacks what it needs (a column, a table).

    The runner records such a run as ``skipped`` with the message, not as an error. A
    matcher that cannot run on the run's engine raises it too (see :class:`NoDuckDB`).
    """


class NoDuckDB:
    """``MatchContext.con`` of a run on another engine than DuckDB.

    Any use (``ctx.con.sql(...)``, passing it to a SQL helper) raises
    :class:`UnsupportedInput` naming the engine, so a matcher written for DuckDB only
    is recorded as skipped on that engine, with the reason.
    """

    def __init__(self, engine: str) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        msg = (
            f"this matcher uses the DuckDB connection (ctx.con.{name}), and this run's "
            f"engine is {self._engine}: only matchers written against ctx.engine run there"
        )
        raise UnsupportedInput(msg)


@dataclass(frozen=True)
class MatchContext:
    """Everything a matcher may use for one run.

    Parameters
    ----------
    con
        A harness-owned DuckDB connection. Create only objects whose names start with
        :attr:`prefix` (see :meth:`temp_name`); the input views must stay untouched.
    records
        Name of the view with the records to resolve: ``record_id`` (BIGINT, unique),
        ``source`` and attribute columns (see ``docs/dataset-layout.md``).
    tables
        Auxiliary inputs by logical name (e.g. ``"identifier_ip"``) -> view name.
    seed
        Seed for anything random; the same seed must give the same partition unless the
        matcher carries the ``nondeterministic`` tag.
    labels
        For matchers tagged ``needs_labels``: view of ``(record_id, entity_id)`` for a
        training sample of records whose persons are disjoint from the evaluated ones;
        ``None`` otherwise.
    threads
        Number of threads the run may use (already set on ``con``).
    prefix
        Namespace for objects the matcher creates in ``con``.
    engine
        The SQL engine of the run (:class:`~bench.sql.interface.Engine`); ``None``
        means DuckDB over ``con``. Matchers that run on every engine use ``engine``
        with the SQL helpers of this module (``execute(ctx.engine, ...)``) and write
        DuckDB SQL; on another engine ``con`` is a stand-in whose every use raises
        :class:`UnsupportedInput`, so a DuckDB-only matcher is recorded as skipped.
    """

    con: duckdb.DuckDBPyConnection
    records: str
    tables: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    labels: str | None = None
    threads: int = 1
    prefix: str = "__idbench_m_"
    engine: Engine = None  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.engine is None:
            object.__setattr__(self, "engine", DuckDBEngine(self.con))

    def temp_name(self, name: str) -> str:
        """Return a namespaced name for a table/view the matcher creates."""
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            msg = f"temp_name expects letters, digits and underscores, got {name!r}"
            raise ValueError(msg)
        return f"{self.prefix}{name}"

    def columns(self) -> list[str]:
        """Column names of the records view."""
        return list(table_columns(self.engine, self.records))

    def rows(self, sql: str, name: str) -> Output:
        """The rows of ``sql`` (DuckDB SQL) as a matcher output, on any engine.

        On DuckDB a lazy relation (read once, by the harness, inside the timed phase);
        elsewhere a view ``temp_name(name)`` on the engine, which the harness reads the
        same way.
        """
        if self.engine.kind == "duckdb":
            return self.engine.con.sql(sql)  # type: ignore[attr-defined]
        view = self.temp_name(name)
        self.engine.create_view(view, sql, step=f"{name}: output")
        return view

    @property
    def engine_kind(self) -> str:
        """``"duckdb"`` or ``"spark"``: the engine the run's SQL goes to."""
        return self.engine.kind

    def require_columns(self, *names: str) -> None:
        """Raise :class:`UnsupportedInput` unless the records have all ``names``."""
        have = set(self.columns())
        missing = [n for n in names if n not in have]
        if missing:
            msg = f"records lack column(s) {', '.join(missing)} (have: {', '.join(sorted(have))})"
            raise UnsupportedInput(msg)

    def require_tables(self, *names: str) -> None:
        """Raise :class:`UnsupportedInput` unless the dataset has all auxiliary tables."""
        missing = [n for n in names if n not in self.tables]
        if missing:
            msg = f"dataset lacks auxiliary table(s) {', '.join(missing)}"
            raise UnsupportedInput(msg)


@dataclass
class MatchResult:
    """What :meth:`Matcher.match` returns.

    Parameters
    ----------
    clusters
        ``(record_id, cluster_id)``: every input record exactly once. ``cluster_id`` may
        be any integer or string type.
    pairs
        Optional ``(record_id_l, record_id_r, score)`` with ``record_id_l < record_id_r``,
        no duplicates, finite scores, higher = more likely the same entity. Lets the
        harness sweep thresholds and measure candidate generation.
    diagnostics
        JSON-able facts about the run (iterations, candidate counts, trained weights...).
    """

    clusters: Output
    pairs: Output | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Matcher(Protocol):
    """The protocol every matcher implements (usually via :class:`BaseMatcher`)."""

    name: ClassVar[str]
    version: ClassVar[str]
    lens: ClassVar[str]
    tags: ClassVar[frozenset[str]]

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters, unchanged."""
        ...

    def fit(self, ctx: MatchContext) -> Self:
        """Learn from the inputs (EM, u-probabilities...); return ``self``."""
        ...

    def match(self, ctx: MatchContext) -> MatchResult:
        """Resolve the records of ``ctx`` into clusters (and optionally scored pairs)."""
        ...


class BaseMatcher:
    """Convenience base class in the scikit-learn style.

    Subclasses declare every parameter as an explicit keyword of ``__init__`` and store
    it unchanged under the same attribute name. ``get_params`` and ``repr`` come from
    introspecting that signature; ``repr`` is the run label.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    #: One of :data:`LENSES`. Subclasses must set it; the conformance suite refuses an
    #: empty or unknown lens, and the report shows such a matcher as "unspecified".
    lens: ClassVar[str] = ""
    tags: ClassVar[frozenset[str]] = frozenset()
    #: Score at or above which a pair is declared a match; matchers that emit pairs set
    #: a ``threshold`` parameter, which the conformance suite uses.
    threshold: float | None = None

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the keyword parameters of ``__init__``, in declaration order."""
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters as stored on the instance."""
        return {name: getattr(self, name) for name in self.param_names()}

    def fit(self, ctx: MatchContext) -> Self:
        """Do nothing: most deterministic matchers have nothing to learn."""
        return self

    def match(self, ctx: MatchContext) -> MatchResult:
        """Resolve the records; subclasses must implement this."""
        raise NotImplementedError(f"{type(self).__name__}.match is not implemented")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
