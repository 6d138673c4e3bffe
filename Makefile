# Quickstart: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# The demo keeps its embedded registry inside the checkout, not in ~/.lume-services.
DEMO_HOME ?= $(CURDIR)/.lume-home

.PHONY: venv demo test test-servers schema openapi lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e '.[all]'
	touch $@

demo: venv
	LUME_HOME=$(DEMO_HOME) $(PY) examples/demo.py

# MariaDB and PostgreSQL binaries for the throwaway test servers (apt-get as root).
# Without them, database tests skip locally; with CI=true they fail.
test-servers:
	bash scripts/install_test_servers.sh || [ "$$CI" != "true" ]

test: venv test-servers
	$(PY) -m pytest

schema: venv
	$(PY) scripts/update_docker_compose_schema.py build-docker-compose-schema

# The REST API's OpenAPI document, committed as docs/openapi.json (CI checks it is current).
openapi: venv
	$(PY) scripts/update_openapi.py

lint: venv
	$(VENV)/bin/ruff check lume_services tests scripts examples bench

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
