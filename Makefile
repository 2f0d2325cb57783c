# The README's two commands: `make run` and `make test`. Both create .venv when it is
# missing or older than pyproject.toml / requirements.lock, install idbench into it,
# then do their job.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.idbench-installed

.PHONY: run test bench lint format clean-venv

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

bench: $(STAMP)
	$(BIN)/python -m pytest -m bench --benchmark-enable --benchmark-save=bench \
		--benchmark-storage=file://results/benchmarks tests/benchmarks

lint: $(STAMP)
	$(BIN)/ruff check bench matchers tests
	$(BIN)/ruff format --check bench matchers tests

format: $(STAMP)
	$(BIN)/ruff format bench matchers tests
	$(BIN)/ruff check --fix bench matchers tests

clean-venv:
	rm -rf $(VENV)
