# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## Start keyplane on SQLite (./keyplane.db) with a demo organization; prints the URL and a key.
run: install
	$(BIN)/keyplane serve --demo

## Lint, type-check, check import contracts, then run every test (PostgreSQL ones skip
## without a server, except under CI=true).
test: lint
	$(BIN)/pytest --cov --cov-report=term:skip-covered

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## The verification benchmark (needs wrk: apt-get install -y wrk).
bench: install
	$(BIN)/python bench/verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
