# make run: set up and start the ledger on the embedded SQLite database.
# make test: set up and run the tests (PostgreSQL too when LEDGER_TEST_POSTGRES_URL is set).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint init vkey audit soak demo bench bench-large clean browser-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# make demo: fill the running ledger (make run, in another terminal) with synthetic demo data.
demo: $(VENV)/.run-installed
	$(BIN)/python -m demo $(DEMO_ARGS)

init: $(VENV)/.run-installed
	$(BIN)/flask --app app ledger init

vkey: $(VENV)/.run-installed
	$(BIN)/flask --app app ledger vkey

audit: $(VENV)/.run-installed
	$(BIN)/flask --app app ledger audit

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests' axe-core, from the npm registry, exactly as package-lock.json pins it
# (test-only: tests/browser/axe.py puts it in the pages under test; the ledger never serves it).
# Without npm the browser tests skip, as without Chromium; CI (.ci/run) installs npm and requires them.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --ignore-scripts --no-audit --no-fund && touch $@; \
	else echo "npm is missing (apt-get install npm): the browser tests will be skipped"; fi

browser-deps: node_modules/.installed

test: lint browser-deps
	$(BIN)/python -m pytest

# Longer crash, fault, API-fuzzing and concurrency runs than `make test` does (about 21 minutes).
soak: $(VENV)/.test-installed
	LEDGER_SOAK_ROUNDS=$${LEDGER_SOAK_ROUNDS:-40} LEDGER_FUZZ_EXAMPLES=$${LEDGER_FUZZ_EXAMPLES:-200} \
		LEDGER_SOAK_SECONDS=$${LEDGER_SOAK_SECONDS:-180} \
		$(BIN)/python -m pytest -q tests/ledger/test_crash.py tests/ledger/test_faults.py tests/api/test_fuzz_api.py tests/e2e/test_concurrency.py

# make bench: the benchmark suite with ceilings (BENCH_QUICK=1 for a < 2 minute run).
bench: $(VENV)/.test-installed
	$(BIN)/python -m bench.run $(if $(filter 1 yes true,$(BENCH_QUICK)),--quick,--update-docs)

# make bench-large: grow a SQLite log to BENCH_LARGE_SIZE entries (10,000,000) in BENCH_LARGE_DIR
# (bench/results/large-db), resuming from what the database already holds, then measure the reads and
# bytes per record at that size through gunicorn. ~2.1 KB a record (~21 GB at 10M). Measured on 2 shared
# busy cores: 4M entries in 59 min (1,127/s), then 198 s of measurement; resumed quieter, 4M -> 6.4M at
# 2,723/s; 10M on a quiet 2-core machine projected at ~50 min. See bench/README.md.
bench-large: $(VENV)/.test-installed
	$(BIN)/python -m bench.large

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules
