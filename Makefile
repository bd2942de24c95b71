# The two commands of the README: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := requirements/lock.txt
SDK    := clients/python
# A new stamp whenever a pyproject.toml or the lock changes, so `make test` reinstalls.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(SDK)/pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: install lock run test lint audit browser bench bench-signin fuzz clean

# The lock pins every package installed, pip included, so what pip-audit checks is what runs.
# The Python SDK (keyplane-client) is installed beside keyplane for its tests (tests/sdk);
# keyplane itself does not depend on it.
$(STAMP): pyproject.toml $(SDK)/pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e $(SDK)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## Re-pin $(LOCK) after a dependency changed in pyproject.toml. Pins that still fit stay as
## they are; to move them: make lock LOCK_ARGS=--upgrade (or --upgrade-package NAME).
LOCK_ARGS ?=
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --extra dev --strip-extras \
	  --allow-unsafe --no-emit-find-links --no-emit-index-url $(LOCK_ARGS) \
	  --output-file $(LOCK) pyproject.toml

## Start keyplane on SQLite (./keyplane.db) with a demo organization; prints the URL and a key.
run: install
	$(BIN)/keyplane serve --demo

## Audit the lock, lint, type-check, check import contracts, scan src/ with bandit, then run
## every test with branch coverage (below 93% fails). PostgreSQL and browser tests skip
## (saying why) without a server or Chromium, except under CI=true.
test: lint browser
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered

## Known vulnerabilities in the locked packages, from PyPI's vulnerability feed (pip-audit's
## default service). Where PyPI answers for projects but not for single releases, as behind
## this project's sandbox proxy, requirements/audit_latest.py audits the pins that are their
## project's latest release and lists the others. A machine that reaches neither skips, and
## says so; AUDIT_REQUIRED=1 turns any pin left unaudited into a failure.
AUDIT_REQUIRED ?=
audit: install
	@out=$$($(BIN)/pip-audit --requirement $(LOCK) --no-deps --disable-pip --strict \
	  --progress-spinner off 2>&1); status=$$?; \
	if [ $$status -eq 0 ]; then \
	  echo "pip-audit: no known vulnerability in the $$(grep -c '==' $(LOCK)) pins of $(LOCK)"; \
	elif echo "$$out" | grep -q -e 'could not be audited' -e 'Could not connect'; then \
	  echo "pip-audit: PyPI's release pages (/pypi/NAME/VERSION/json) cannot be reached:" \
	       "auditing with requirements/audit_latest.py instead"; \
	  $(BIN)/python requirements/audit_latest.py $(LOCK) > $(VENV)/audit.out; status=$$?; \
	  cat $(VENV)/audit.out; \
	  if [ $$status -eq 3 ]; then echo "audit: SKIPPED, $(LOCK) was NOT audited" >&2; \
	    test -z "$(AUDIT_REQUIRED)"; \
	  elif [ $$status -ne 0 ]; then exit 1; \
	  elif [ -n "$(AUDIT_REQUIRED)" ] && grep -q 'NOT audited' $(VENV)/audit.out; then exit 1; fi; \
	else echo "$$out" >&2; echo "pip-audit: bump the package in $(LOCK) (make lock" \
	  "LOCK_ARGS='--upgrade-package NAME'), or add '--ignore-vuln ID' here with a reason" >&2; \
	  exit 1; fi

## Debian's Chromium for the Playwright tests (never Playwright's own browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed and cannot be installed here: browser tests will skip"; fi; }

lint: install audit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bandit -c pyproject.toml -r src $(SDK)/src --severity-level medium --quiet

## The verification benchmark (needs wrk: apt-get install -y wrk).
bench: install
	$(BIN)/python bench/verify.py

## Verification latency while 16 clients sign in to the console (needs wrk too).
bench-signin: install
	$(BIN)/python bench/signin.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage

## The long API fuzzing run: schemathesis, every check, 100 examples per operation.
fuzz: install
	$(BIN)/python bench/fuzz.py
