"""The synthetic identity world: one latent population, rendered as CDP and DMP sources.

Public functions: :func:`generate` (recipe + seed -> dataset directory in the layout of
``docs/dataset-layout.md``), :func:`ensure_generated` (the same, reusing an up-to-date
directory) and :func:`describe` (counts and distributions of a generated dataset,
JSON-able). Design and sources of every default: ``datasets/README.md``.

Everything is drawn from one ``numpy.random.default_rng(seed)`` handed down to each
function in a fixed order, with vectorised numpy/polars code (no per-record Python), and
written with a single-threaded Parquet writer: same recipe + seed -> same bytes.

Modules: ``pipeline`` (the generation steps), ``world/`` (the latent population),
``sources`` and ``anonymous`` (rendering records and evidence), ``network`` (IP leases),
``corrupt`` (the noise model), ``truth`` (the truth tables), ``summary`` (describe).
"""

from __future__ import annotations

from bench.data.datagen.pipeline import GENERATOR_VERSION, ensure_generated, generate
from bench.data.datagen.summary import describe
from bench.data.datagen.truth import HAZARDS

__all__ = ["GENERATOR_VERSION", "HAZARDS", "describe", "ensure_generated", "generate"]
