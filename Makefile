# The platform's commands. `make run` and `make test` set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_DIST := deploy/kafka/.dist/libs/.resolved
SERVICES := case contact complaint qa
PACKAGES := -e 'libs/common[test,dev]' $(foreach s,$(SERVICES),-e services/$(s)-svc)
PYTEST_ARGS ?=

.PHONY: help install kafka-dist run test test-unit lint format bench soak asyncapi clean lock

help:
	@echo "make run     start Kafka and the four services (SQLite under var/); Ctrl-C stops all"
	@echo "make test    lint, types, then unit, integration and e2e tests on real Kafka + PostgreSQL"
	@echo "make bench   benchmarks under bench/, figures to bench/results.json"
	@echo "make soak    steady traffic for SOAK_MINUTES (30): RSS trend and errors, var/soak.json"

install: $(STAMP)

$(STAMP): requirements/constraints.txt libs/common/pyproject.toml $(wildcard services/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt $(PACKAGES)
	@touch $@

kafka-dist: $(KAFKA_DIST)

$(KAFKA_DIST): deploy/kafka/pom.xml
	bash deploy/kafka/kafka.sh fetch
	@touch $@

run: install kafka-dist
	$(PY) scripts/run.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/common/src $(foreach s,$(SERVICES),services/$(s)-svc/src)

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install kafka-dist lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -m "not kafka and not postgres and not e2e" $(PYTEST_ARGS)

bench: install kafka-dist
	$(PY) bench/run.py

# A steady mix for SOAK_MINUTES (default 30): RSS trend per process, errors counted
# (scripts/soak.py; figures to var/soak.json). Not part of `make test`.
soak: install kafka-dist
	$(PY) scripts/soak.py

asyncapi: install
	$(PY) -m collect_common.events.asyncapi -o docs/asyncapi.json

# Re-pin: resolve the newest allowed versions and write them to the constraints file.
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements/constraints.txt

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# --- deployment and generated documents -------------------------------------------------
.PHONY: openapi policy-docs docs images compose-env
TAG ?= dev

openapi: install
	$(PY) scripts/export_openapi.py

policy-docs: install
	$(PY) scripts/policy_docs.py

# Every generated document: AsyncAPI, OpenAPI per service, the policy reference.
docs: asyncapi openapi policy-docs

# The service images (deploy/Dockerfile), tagged collect/<service>-svc:$(TAG).
images:
	$(foreach s,$(SERVICES),docker build -f deploy/Dockerfile --build-arg SERVICE=$(s) -t collect/$(s)-svc:$(TAG) . &&) true

# deploy/compose/.env with fresh secrets (kept if it exists).
compose-env:
	$(PYTHON) deploy/compose/make_env.py
