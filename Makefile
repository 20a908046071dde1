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

# Plug-ins shipped as distributions of their own (plugins/<name>/pyproject.toml) install after the
# hub, as a third-party plug-in would: the hub finds them through their entry points only.
PLUGINS = plugins/telegram

# One pip run for the hub and its plug-ins: one resolution instead of one per distribution.
$(VENV)/.installed: pyproject.toml $(PLUGINS:%=%/pyproject.toml) | $(BIN)/python
	$(BIN)/pip install --quiet -e . $(PLUGINS:%=-e %)
	touch $@

$(VENV)/.installed-test: pyproject.toml $(PLUGINS:%=%/pyproject.toml) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]' $(PLUGINS:%=-e %)
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
##       The install (pip) and the services (apt on first use: Dovecot, Chromium) run side by side.
test:
	$(MAKE) --no-print-directory -j2 install-test services
	PYTEST=$(BIN)/pytest bash scripts/run-tests.sh $(PYTEST_ARGS)

bench-timeline: install-test
	$(BIN)/python -m bench.timeline --record

clean:
	rm -rf $(VENV) .pytest_cache
