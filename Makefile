# Two commands for a newcomer: `make run` and `make test`. Each sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck unit env browser lock clean

run: $(STAMP)
	$(BIN)/stagepass run --shell

test: $(STAMP) browser lint typecheck unit

# A fast loop while working: no browser, no PostgreSQL, no NATS, nothing slow.
check: $(STAMP) lint typecheck
	$(BIN)/pytest -q -m "not browser and not postgres and not nats and not slow" $(PYTEST_ARGS)

env: $(STAMP)

# audio/_lane.c: the editable install compiles the fast lane's C loop in place.
$(STAMP): requirements.lock pyproject.toml audio/_lane.c
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Stagepass needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Browser tests drive Debian's Chromium through Playwright and Debian's Firefox ESR over
# WebDriver BiDi (tests/audio/browsers.py); no browser download.
browser:
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	command -v firefox-esr >/dev/null || missing="$$missing firefox-esr"; \
	[ -z "$$missing" ] || { \
		echo "Installing Debian's$$missing for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }

# ruff, then the import contracts in pyproject.toml ([tool.importlinter]; README: Architecture).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy bot billing adapters scheduler audio bench tests

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Regenerate requirements.lock after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	rm -f audio/_lane.*.so
