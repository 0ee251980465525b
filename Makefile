# spikeforge — everything runs from a virtual environment that this Makefile bootstraps
# from pyproject.toml on first use (.venv/). No system packages are needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.spikeforge-installed
BOARD  ?=
CONFIG ?=
PYTEST_ARGS ?=

.PHONY: all sim test test-slow test-all test-fast lint flash build boards figures clean

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
	$(BIN)/spikeforge sim

## The default test run (lint, models, host, RTL benches against the golden models): the
## suite a change must pass; well under 30 minutes on a 2-core machine.
test: $(STAMP) lint
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

## The slow regression guards: full board builds (fit and timing of every board's reference
## configurations, RHD builds), long virtual-board recordings and the RTL bench cases of
## sim.suite.SLOW_CASES (whole-system runs a faster default case also covers). CI runs them
## after `test`.
test-slow: $(STAMP)
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

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
