# The README's commands. `make demo` and `make test` each install into .venv first.
# `make demo` opens the operator window on simulator cups; `make synth-demo` renders a synthetic dataset instead.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo synth-demo test lint typecheck unit screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/cupcheck demo

synth-demo: install
	$(BIN)/cupcheck synth --types 300 --cups 48 --seed 7 --out demo-out/synth
	$(BIN)/cupcheck synth-sheet demo-out/synth --out demo-out/contact-sheet.png

screenshots: install
	xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python -m station.screenshots --home demo-out/shots-home --out docs/screenshots

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
