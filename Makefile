# The README's two commands: `make run` and `make test`. Both create .venv when it is
# missing or older than pyproject.toml / requirements.lock, install idbench into it,
# then do their job.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.idbench-installed

SPARK_STAMP := $(VENV)/.idbench-spark-installed

.PHONY: run test test-quick test-spark bench bench-ci lint format clean-venv

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "idbench needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/idbench run

test: $(STAMP)
	$(BIN)/python -m pytest

# The Spark engine's tests (skipped by `make test`): installs the [spark] extra (pyspark,
# pinned in requirements.lock) and runs the tests marked spark on one local[2] session.
# Needs Java 17+ on PATH (Debian: openjdk-17-jre-headless).
$(SPARK_STAMP): $(STAMP)
	@command -v java >/dev/null || { echo "make test-spark needs Java 17+ on PATH (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,spark]'
	@touch $(SPARK_STAMP)

test-spark: $(SPARK_STAMP)
	IDBENCH_SPARK_TESTS=1 $(BIN)/python -m pytest -m spark

# The quick loop while editing (under a minute on 2 cores): everything but the tests
# marked slow (worker processes, data generation, Splink/recordlinkage fits, benchmarks).
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# Full benchmark run: small generated datasets and 1M synthetic records (the quick,
# one-shot mode on tiny data runs inside `make test`). The JSON (machine_info,
# commit_info, extra_info with quality per benchmark) goes to
# results/benchmarks/<machine-id>/NNNN_<commit>_bench.json.
bench: $(STAMP)
	IDBENCH_BENCH_SIZE=$${IDBENCH_BENCH_SIZE:-small} \
	IDBENCH_BENCH_RECORDS=$${IDBENCH_BENCH_RECORDS:-1000000} \
	$(BIN)/python -m pytest -m bench --benchmark-enable --benchmark-save=bench \
		--benchmark-storage=file://results/benchmarks --benchmark-columns=min,median,max,rounds \
		tests/benchmarks

# CI: every benchmark once on tiny data, timed, with quality in extra_info; the JSON is
# kept as the CI artefact (timings are stored, not gated: shared runners are noisy).
bench-ci: $(STAMP)
	mkdir -p results/benchmarks
	$(BIN)/python -m pytest -m bench --benchmark-enable --benchmark-min-rounds=1 \
		--benchmark-json=results/benchmarks/ci.json tests/benchmarks

lint: $(STAMP)
	$(BIN)/ruff check bench matchers tests
	$(BIN)/ruff format --check bench matchers tests

format: $(STAMP)
	$(BIN)/ruff format bench matchers tests
	$(BIN)/ruff check --fix bench matchers tests

clean-venv:
	rm -rf $(VENV)
