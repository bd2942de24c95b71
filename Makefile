# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: install run test lint browser bench fuzz clean

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

## Lint, type-check, check import contracts, then run every test. PostgreSQL and browser
## tests skip (saying why) without a server or Chromium, except under CI=true.
test: lint browser
	$(BIN)/pytest --cov --cov-report=term:skip-covered

## Debian's Chromium for the Playwright tests (never Playwright's own browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed and cannot be installed here: browser tests will skip"; fi; }

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

## The long API fuzzing run: schemathesis, every check, 100 examples per operation.
fuzz: install
	$(BIN)/python bench/fuzz.py
