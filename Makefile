# The two sacred commands: `make run` (the whole stack, embedded default) and `make test`.
# Everything else is a convenience. Only python3 (3.11+) and pip are assumed on the machine.

# Prefer an explicit python3.11 when the machine has several interpreters.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The install stamp depends on pyproject.toml, so a dependency change reinstalls and an
# unchanged project skips pip entirely (a `make test` re-run starts in well under a second).
STAMP  := $(VENV)/.installed

# Extra arguments, e.g. `make run ARGS="--api-port 8001"` or `make test ARGS="-k devstack"`.
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install browser run test lint bench bench-history bench-enrollment clean-data

help:
	@echo "make run    - start Temporal dev server + migrations + worker + API (Ctrl-C stops all)"
	@echo "make test   - run the whole test suite"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - speed-to-lead benchmark (docs/benchmarks.md)"
	@echo "make bench-history - history events per journey-year (docs/benchmarks.md)"
	@echo "make bench-enrollment - enrollment throughput and worker memory (docs/benchmarks.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) browser

# The dashboard test drives Debian's Chromium headless (tests/api/test_dashboard.py). Installed
# once from the distribution's registry when missing (as root, with apt); skipped when present.
# Without root or apt it says so, and that one test is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (for the dashboard test) ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium not found and cannot be installed here: the dashboard browser test is skipped"; \
	fi

run: $(STAMP)
	$(BIN)/python scripts/devstack.py $(ARGS)

test: $(STAMP) browser
	$(BIN)/pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python bench/speed_to_lead.py $(ARGS)

bench-history: $(STAMP)
	$(BIN)/python bench/history_per_year.py $(ARGS)

bench-enrollment: $(STAMP)
	$(BIN)/python bench/enrollment.py $(ARGS)

# Deletes the development data (Temporal history and the app database). Never run implicitly.
clean-data:
	rm -rf .data
