# Single entry point. Every target does its own setup (creates .venv from the lock).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)
export UV_COMPILE_BYTECODE := 1

.PHONY: serve stack stack-down system demo test test-fast test-unit lint typecheck lock install bench clean airflow-ui mlflow-ui helm audit secrets images dashboard

$(STAMP): requirements-dev.lock overrides.txt
	@command -v uv >/dev/null 2>&1 || $(PY) -m pip install --quiet uv
	@test -x $(BIN)/python || uv venv --quiet --python $(PY) $(VENV)
	@echo ">> installing the locked environment (about 1-2 min on a fresh machine)"
	VIRTUAL_ENV=$(VENV) uv pip install --quiet -r requirements-dev.lock --override overrides.txt
	@touch $(STAMP)

install: $(STAMP)

lock:
	uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu requirements.in --override overrides.txt -o requirements.lock
	uv pip compile -q --python-version 3.11 --python-platform x86_64-unknown-linux-gnu requirements-dev.in --override overrides.txt -o requirements-dev.lock
	$(PY) tools/plain_pip_requirements.py  # requirements.txt: the same lock for plain pip

demo: $(STAMP)
	$(BIN)/python -m devtools.demo $(DEMO_ARGS)

test: $(STAMP) lint typecheck helm system
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Debian packages the integration tests run for real (PostgreSQL, Prometheus, Pushgateway, Alertmanager).
system:
	@tools/system_packages.sh

# A pinned helm for the chart contract tests (best effort: they skip without it).
helm:
	@tools/fetch_helm.sh

# The task and Airflow images (docker/build.sh: podman or docker; prints sizes and build
# times). Not part of `make test`: the full build takes longer than the test gate allows.
# IMAGES_ARGS=--local-base builds on a debootstrap base where no registry is reachable.
images:
	docker/build.sh $(IMAGES_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

# The developer's loop (under 3 min on 2 cores): unit tests and DAG integrity/wiring, no slow tests.
# `make test` stays the full gate (lint, types, helm, every test).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests/unit tests/dags $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy tasks dags research devtools

# Known vulnerabilities of the pinned runtime lock (pip-audit; needs a reachable vulnerability
# database, so not part of `make test`). Exit 3: packages could not be audited. docs/security.md.
audit: $(STAMP)
	$(BIN)/python tools/audit.py $(AUDIT_ARGS)

# detect-secrets over the tracked tree against the reviewed .secrets.baseline (also a test).
secrets: $(STAMP)
	$(BIN)/python tools/secret_scan.py
# The Grafana dashboard JSON from its generator (monitoring/grafana/dashboard.py); commit the result.
dashboard: $(STAMP)
	$(BIN)/python monitoring/grafana/dashboard.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# Project-local Airflow UI on the demo's Airflow home and settings (devtools.demo.airflow_env),
# with .venv/bin first on PATH (standalone starts its components as `airflow`) and the DB
# migrated. AIRFLOW__API__PORT=NNNN moves it off 8080. Ctrl-C stops it and its components.
airflow-ui: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python tools/airflow_ui.py

# Production-like stack on 127.0.0.1 (docs/stack.md): PostgreSQL, SeaweedFS S3, MLflow server on
# both, Airflow (LocalExecutor on PostgreSQL). `make demo DEMO_ARGS=--stack` runs the demo on it.
stack: $(STAMP) system
	$(BIN)/python -m devtools.stack up

stack-down: $(STAMP)
	$(BIN)/python -m devtools.stack down
# The read-only schedule API for the desk on 127.0.0.1:8000 over var/data (docs/desk-api.md);
# needs DAP_API_TOKENS (comma-separated bearer tokens).
serve: $(STAMP)
	@test -n "$$DAP_API_TOKENS" || { echo "set DAP_API_TOKENS (e.g. export DAP_API_TOKENS=\$$(openssl rand -hex 32))"; exit 2; }
	$(BIN)/python -m tasks.serve $(SERVE_ARGS)

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/var/mlflow/mlflow.db --port 5000
