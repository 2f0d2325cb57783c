"""Vectorised helpers shared by the generator modules: sampling, hashing, formatting, IO."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

INF = np.inf
US_PER_DAY = 86_400_000_000
#: Rows per Parquet row group: large enough for fast scans, fixed so bytes are stable.
ROW_GROUP = 1 << 20


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A stateless 64-bit integer hash (SplitMix64 finaliser), vectorised.

    Used where a value must be a pure function of its inputs (an IP lease, an id string)
    so it can be recomputed on any chunk without storing a table.
    """
    z = np.asarray(x, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z += np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def categorical(rng: np.random.Generator, n: int, probs: np.ndarray | list[float]) -> np.ndarray:
    """Draw ``n`` category indices with the given probabilities (inverse CDF)."""
    p = np.asarray(probs, dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int32)


def categorical_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per element of ``rows`` from the row ``probs[rows]`` of a matrix."""
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    u = rng.random(len(rows))
    out = np.zeros(len(rows), np.int32)
    for g in range(probs.shape[0]):
        m = rows == g
        out[m] = np.searchsorted(cdf[g], u[m], side="right")
    return out


def zipf_cdf(n: int, s: float) -> np.ndarray:
    """CDF of a Zipf law with exponent ``s`` over ranks 1..n."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


def sample_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """Draw ``n`` indices from a precomputed CDF."""
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)


def prob_in_horizon(per_year: float, horizon_days: float) -> float:
    """Probability that an event with a yearly rate happens within the horizon."""
    return float(min(1.0, per_year * horizon_days / 365.0))


def population_count(sampled: int, sample_share: float) -> int:
    """Entities of the population of which ``sampled`` is a ``sample_share`` sample.

    Networks are sized to the population (``networks.sample_share``), never to the
    sample, so sampled persons meet on an IP as rarely as the real density implies.
    """
    return int(np.ceil(sampled / sample_share)) if sampled else 0


def group_offsets(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """For keys sorted ascending: (start offset, count) per group 0..n_groups-1."""
    counts = np.bincount(keys, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return starts, counts


def pick_in_group(
    rng: np.random.Generator, starts: np.ndarray, counts: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Pick a uniformly random member index of ``groups`` (-1 where a group is empty)."""
    c = counts[groups]
    off = np.floor(rng.random(len(groups)) * c).astype(np.int64)
    out = starts[groups] + off
    return np.where(c > 0, out, -1)


def hex_ids(values: np.ndarray, width: int = 16) -> pa.Array:
    """Fixed-width lower-case hex strings of uint64 values, without a Python loop."""
    b = np.asarray(values, dtype=">u8").tobytes().hex().encode("ascii")
    arr = np.frombuffer(b, dtype="S16")
    if width < 16:
        arr = arr.astype(f"S{width}")
    return pa.array(arr, type=pa.binary()).cast(pa.string())


def fixed_strings(mat: np.ndarray) -> pa.Array:
    """Rows of a uint8 matrix (zero padded ASCII) as strings."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    arr = mat.view(f"S{mat.shape[1]}").ravel()
    return pa.array(arr, type=pa.binary()).cast(pa.string())


def to_matrix(strings: pl.Series, width: int) -> np.ndarray:
    """ASCII strings -> zero padded uint8 matrix of ``width`` columns (longer ones cut)."""
    arr = strings.to_numpy().astype(f"S{width}")
    return arr.view(np.uint8).reshape(len(arr), width).copy()


def ip_strings(ips: np.ndarray) -> pl.Series:
    """Dotted-quad strings of IPv4 addresses held as integers (digits placed in numpy)."""
    ips = np.asarray(ips, dtype=np.int64)
    n = len(ips)
    mat = np.zeros((n, 15), np.uint8)
    rows = np.arange(n)
    pos = np.zeros(n, np.int64)
    for i, shift in enumerate((24, 16, 8, 0)):
        o = (ips >> shift) & 255
        nd = 1 + (o >= 10) + (o >= 100)
        m = nd == 3
        mat[rows[m], pos[m]] = 48 + o[m] // 100
        m = nd >= 2
        mat[rows[m], pos[m] + nd[m] - 2] = 48 + (o[m] // 10) % 10
        mat[rows, pos + nd - 1] = 48 + o % 10
        pos += nd
        if i < 3:
            mat[rows, pos] = ord(".")
            pos += 1
    return pl.Series("ip", fixed_strings(mat))


def day_to_ts(start: dt.date, days: np.ndarray) -> pl.Series:
    """Float days since ``start`` -> TIMESTAMP (microseconds)."""
    base = int((dt.datetime.combine(start, dt.time()) - dt.datetime(1970, 1, 1)).total_seconds())
    us = base * 1_000_000 + np.round(np.asarray(days) * US_PER_DAY).astype(np.int64)
    return pl.Series(us).cast(pl.Datetime("us"))


#: String columns with many distinct values: dictionary encoding would only cost time.
HIGH_CARDINALITY = frozenset(
    {
        "email", "phone", "customer_no", "loyalty_id", "account_id", "card_token", "cookie_id",
        "maid", "ip", "id_value", "given_name", "family_name", "middle_name", "street",
        "house_number",
    }
)  # fmt: skip

_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="idbench-parquet")


class ParquetSink:
    """A Parquet file written table by table with one schema (zstd, fixed row groups).

    pyarrow's writer output is a pure function of the data and the row-group size, which
    keeps the dataset bytes (and so the fingerprint) stable per seed. Writes run on one
    background thread, in submission order, so compression overlaps with generation; at
    most two tables per sink wait in the queue (memory stays bounded).
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.schema = schema
        self.rows = 0
        dict_cols = [
            f.name for f in schema if pa.types.is_string(f.type) and f.name not in HIGH_CARDINALITY
        ]
        self._writer = pq.ParquetWriter(
            path, schema, compression="zstd", write_statistics=True, use_dictionary=dict_cols
        )
        self._pending: list[Future[None]] = []

    def write(self, data: pl.DataFrame | pa.Table) -> None:
        """Append a frame (columns cast to the sink's schema, missing ones null)."""
        table = data.to_arrow() if isinstance(data, pl.DataFrame) else data
        n = table.num_rows
        if n == 0:
            return
        cols = []
        for f in self.schema:
            if f.name in table.column_names:
                cols.append(table.column(f.name).cast(f.type))
            else:
                cols.append(pa.nulls(n, type=f.type))
        out = pa.Table.from_arrays(cols, schema=self.schema)
        self.rows += n
        while len(self._pending) >= 2:
            self._pending.pop(0).result()
        self._pending.append(_WRITER.submit(self._writer.write_table, out, ROW_GROUP))

    def close(self) -> None:
        """Wait for queued writes and finish the file."""
        for f in self._pending:
            f.result()
        self._pending = []
        self._writer.close()


def write_frame(path: Path, data: pl.DataFrame, schema: pa.Schema | None = None) -> int:
    """Write one frame to its own Parquet file; return the row count."""
    sink = ParquetSink(path, schema or data.to_arrow().schema)
    sink.write(data)
    sink.close()
    return sink.rows
