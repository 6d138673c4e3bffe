# Quickstart: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# The demo keeps its embedded registry inside the checkout, not in ~/.lume-services.
DEMO_HOME ?= $(CURDIR)/.lume-home

.PHONY: venv lock demo test test-servers schema openapi screenshots lint clean

venv: $(VENV)/.installed

# The versions pinned in uv.lock (--locked: refused if uv.lock is not current with pyproject.toml),
# the project editable with the `all` extra (pip only bootstraps uv, once). --inexact keeps what
# else was installed (the bench extra, below) instead of uninstalling it.
$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv
	UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(UV) sync --quiet --locked --inexact --extra all
	touch $@

# After changing dependencies in pyproject.toml: re-resolve uv.lock (commit it; a test checks it is current).
# (Not through `venv`: its --locked sync refuses a pyproject.toml that uv.lock does not match yet.)
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) lock

demo: venv
	LUME_HOME=$(DEMO_HOME) $(PY) examples/demo.py

# MariaDB and PostgreSQL binaries for the throwaway test servers, and Chromium with its driver for
# the web UI's tests (apt-get as root). Without them, those tests skip locally; with CI=true they fail.
test-servers:
	bash scripts/install_test_servers.sh || [ "$$CI" != "true" ]

test: venv test-servers
	$(PY) -m pytest

schema: venv
	$(PY) scripts/update_docker_compose_schema.py build-docker-compose-schema

# The REST API's OpenAPI document, committed as docs/openapi.json (CI checks it is current).
openapi: venv
	$(PY) scripts/update_openapi.py

# The web UI's pages in headless Chromium, for the README (docs/screenshots/*.png).
screenshots: venv test-servers
	$(PY) scripts/ui_screenshots.py

lint: venv
	$(VENV)/bin/ruff check lume_services tests scripts examples bench

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
