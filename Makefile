# The two commands: `make run` starts the hub, `make test` runs the whole test suite.
# Both create .venv and install what they need; they are safe to repeat.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install install-test services bench-timeline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: install, migrate the SQLite store in ./data, load demo data once, serve at http://$(HOST):$(PORT)/
run: install
	$(BIN)/hub migrate
	$(BIN)/hub serve --demo --host $(HOST) --port $(PORT)

## services: start (and on first use install) what the tests talk to: PostgreSQL, Dovecot, Chromium
services:
	bash scripts/test-services.sh

## test: install test dependencies, start the services, run the whole suite on SQLite and PostgreSQL
##       (in parallel, then the few tests that must run alone: scripts/run-tests.sh)
test: install-test services
	PYTEST=$(BIN)/pytest bash scripts/run-tests.sh $(PYTEST_ARGS)

bench-timeline: install-test
	$(BIN)/python -m bench.timeline --record

clean:
	rm -rf $(VENV) .pytest_cache
