# Every target builds .venv itself, so a fresh machine with only Python 3.11 needs nothing else.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
TEST_EXTRAS ?= dev,spark,clv

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"churnkit needs Python 3.11, found {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# the tests also need the optional parts they check (Spark parity, BG/NBD baseline)
$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[$(TEST_EXTRAS)]'
	@touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/churnkit demo

# the architecture's contracts (pyproject [tool.importlinter]) run before the tests, so CI enforces them
test: $(TEST_STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-fast: $(TEST_STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/bench_simulate.py
	$(BIN)/python bench/bench_ingest.py

clean:
	rm -rf $(VENV) workspace .pytest_cache
