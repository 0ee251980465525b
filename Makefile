# spikeforge — everything runs from a virtual environment that this Makefile bootstraps
# from pyproject.toml on first use (.venv/). No system packages are needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.spikeforge-installed
BOARD  ?=
CONFIG ?=
PYTEST_ARGS ?=

.PHONY: all sim test test-slow test-exhaustive test-all test-fast lint flash build boards figures clean

all: test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
	  "spikeforge needs Python 3.11 or newer; run make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[boards,nwb,bench,dev,lsl,report,crypto]'
	@touch $(STAMP)

## RTL verification: every core against its golden model, with a summary table.
sim: $(STAMP)
	$(BIN)/spikeforge sim --jobs $(JOBS)

## Tests that only compute (the RTL benches, the board builds) run in JOBS pytest-xdist
## workers; the rest (recordings, sockets, real-time virtual boards, timing) run alone.
JOBS     ?= 2
PARALLEL := tests/sim/test_rtl_benches.py tests/boards
SERIAL   := $(foreach t,$(PARALLEL),--ignore=$(t))

## The default test run (lint, models, host, RTL benches against the golden models): the
## suite a change must pass; ~25 minutes on a 2-core machine, 42 on a slow day (stop 28,
## docs/verification.md).
test: $(STAMP) lint
	$(BIN)/pytest -m "not slow" $(SERIAL) $(PYTEST_ARGS)
	$(BIN)/pytest -m "not slow" -n $(JOBS) $(PARALLEL) $(PYTEST_ARGS)

## The slow regression guards: full board builds (fit and timing of every board's reference
## configurations, RHD builds), long virtual-board recordings, the detection studies. CI
## runs them after `test`.
test-slow: $(STAMP)
	$(BIN)/pytest -m "slow and not exhaustive" $(SERIAL) $(PYTEST_ARGS)
	$(BIN)/pytest -m "slow and not exhaustive" -n $(JOBS) $(PARALLEL) $(PYTEST_ARGS)

## The RTL bench cases that a faster default case also covers (sim.suite.SLOW_CASES and the
## v2 coder's cases outside V2_DEFAULT_CASES; ~40 Verilator builds): run them after changing
## the coder or the system's framing. Not in CI.
test-exhaustive: $(STAMP)
	$(BIN)/pytest -m exhaustive -n $(JOBS) tests/sim/test_rtl_benches.py $(PYTEST_ARGS)

## Everything: what .ci/run runs.
test-all: test test-slow

## Everything except the RTL benches and the board builds: seconds, for quick iteration.
test-fast: $(STAMP) lint
	$(BIN)/pytest -m "not slow and not sim" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

## Build the bitstream for BOARD (cached) and program it: make flash BOARD=icebreaker
flash: $(STAMP)
	@test -n "$(BOARD)" || { echo "usage: make flash BOARD=<name> [CONFIG=file.json]"; exit 2; }
	$(BIN)/spikeforge flash --board $(BOARD) $(if $(CONFIG),--config $(CONFIG))

build: $(STAMP)
	@test -n "$(BOARD)" || { echo "usage: make build BOARD=<name> [CONFIG=file.json]"; exit 2; }
	$(BIN)/spikeforge build --board $(BOARD) $(if $(CONFIG),--config $(CONFIG))

## The supported boards and the largest configuration each fits (from the recorded figures).
boards: $(STAMP)
	$(BIN)/spikeforge boards

## Build the reference configurations on every board (or BOARD=...); record the figures in
## boards/figures.json and the table in docs/boards.md. Cached builds are not repeated.
figures: $(STAMP)
	$(BIN)/spikeforge figures $(if $(BOARD),--board $(BOARD)) $(if $(CONFIG),--config $(CONFIG))

clean:
	rm -rf build
