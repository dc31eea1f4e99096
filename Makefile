# Developer and CI entry points. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# Interpreter used to create the venv: python3.11 if present, else python3.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
STAMP := $(VENV)/.installed
SERVICES := $(sort $(filter-out scripts/services/_%,$(wildcard scripts/services/*.sh)))
LINT_PATHS := $(wildcard src tests bench dags)
COMPOSE := docker compose -f docker/docker-compose.yml

.PHONY: help install test test-integration test-airflow services-up services-down lint format demo bench \
	bench-pipeline clean up down chromium console-screenshots bench-console monitoring-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install the package with the dev and postgres extras

# Re-runs only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,postgres]"
	touch $@

test: install ## fast tests (no services needed)
	$(VENV)/bin/pytest -m "not integration" -n 2 -q

test-integration: install ## integration tests against real services (PostgreSQL, Nessie, MinIO, Kafka, Kafka Connect + Debezium, Toxiproxy, Keycloak, Trino from scripts/services/)
	@# tests/deploy: helm and compose-config (compose-go), built from the Go module proxy once, then cached
	bash scripts/tools/helm.sh >/dev/null
	bash scripts/tools/compose.sh >/dev/null
	@# tests/monitoring: promtool (check rules, test rules), built from the Go module proxy once, then cached
	bash scripts/tools/promtool.sh >/dev/null
	bash scripts/services/postgres.sh start
	bash scripts/services/nessie.sh start
	bash scripts/services/minio.sh start
	@# Maven runs Nessie's conformance tests (tests/compat): the Debian package, as root
	command -v mvn >/dev/null || { test "$$(id -u)" = 0 && apt-get install -y -q maven >/dev/null; } \
		|| { echo "Maven is needed for tests/compat: apt-get install -y maven" >&2; exit 1; }
	bash scripts/services/kafka.sh start
	@# tests/ingest/test_debezium_integration.py: a second PostgreSQL with wal_level=logical (the CDC
	@# source) and Kafka Connect + Debezium, installed here; the test starts the worker and stops it
	bash scripts/services/postgres.sh --logical start
	bash scripts/services/kafka-connect.sh install
	@# tests/faults: Toxiproxy between the lakehouse and its services, built from the Go module proxy once
	bash scripts/services/toxiproxy.sh start
	@# tests/server/keycloak: real OIDC sign-in (realm docker/keycloak/lakehouse-realm.json); the
	@# tests start their own authenticated Nessie beside the shared one
	bash scripts/services/keycloak.sh start
	@# Spark engine tests (tests/pipelines/engines): pyspark into .venv, Iceberg jars into the cache
	bash scripts/services/spark.sh install
	bash scripts/services/spark.sh jars >/dev/null
	@# DuckDB client tests (tests/server/test_duckdb_rest_integration.py): DuckDB 1.4 + PyPI extensions, own venv in the cache
	bash scripts/tools/duckdb.sh >/dev/null
	@# pynessie (Nessie API v1 client) tests (tests/server/test_pynessie_v1_integration.py): own venv in the cache
	bash scripts/tools/pynessie.sh >/dev/null
	@# Nessie's Spark SQL extensions (tests/server/test_spark35_nessie_sql_integration.py): pyspark 3.5,
	@# iceberg-spark-runtime-3.5 and nessie-spark-extensions-3.5 in their own venv in the cache
	bash scripts/tools/spark35.sh >/dev/null
	@# Trino 476 (tests/serving): downloaded once into the cache and trimmed to its iceberg and tpch
	@# plugins; the tests start it (Java 24+, scripts/services/trino.sh) and stop it at the end
	bash scripts/services/trino.sh install >/dev/null
	@# console browser tests (tests/console/test_browser.py): Debian's chromium, driven by Playwright
	$(MAKE) --no-print-directory chromium
	LAKEHOUSE_TEST_DUCKDB_PYTHON="$$(bash scripts/tools/duckdb.sh)" \
	LAKEHOUSE_TEST_PYNESSIE_PYTHON="$$(bash scripts/tools/pynessie.sh)" \
	LAKEHOUSE_TEST_SPARK35_PYTHON="$$(bash scripts/tools/spark35.sh)" \
	LAKEHOUSE_TEST_POSTGRES_URL="$$(bash scripts/services/postgres.sh url lakehouse_test)" \
	LAKEHOUSE_TEST_NESSIE_URL="$$(bash scripts/services/nessie.sh url)" \
	LAKEHOUSE_TEST_S3_ENDPOINT="$$(bash scripts/services/minio.sh url)" \
	LAKEHOUSE_TEST_S3_ACCESS_KEY="$$(bash scripts/services/minio.sh access-key)" \
	LAKEHOUSE_TEST_S3_SECRET_KEY="$$(bash scripts/services/minio.sh secret-key)" \
	LAKEHOUSE_TEST_KAFKA_BOOTSTRAP="$$(bash scripts/services/kafka.sh url)" \
	LAKEHOUSE_TEST_CDC_POSTGRES_URL="$$(bash scripts/services/postgres.sh --logical url)" \
	LAKEHOUSE_TEST_TOXIPROXY_URL="$$(bash scripts/services/toxiproxy.sh url)" \
	LAKEHOUSE_TEST_KEYCLOAK_URL="$$(bash scripts/services/keycloak.sh url)" \
		$(VENV)/bin/pytest -m integration -q
	$(MAKE) --no-print-directory test-airflow

monitoring-check: ## promtool check rules/config and the alert rules' unit tests on monitoring/
	bash scripts/tools/promtool.sh check

chromium: ## Debian's chromium for the console's browser tests (Playwright's own download is not used)
	command -v chromium >/dev/null || { test "$$(id -u)" = 0 && apt-get install -y -q chromium >/dev/null; } \
		|| { echo "chromium is needed for tests/console: apt-get install -y chromium" >&2; exit 1; }

console-screenshots: install chromium ## click through the console on a demo home; PNGs into docs/console/
	CONSOLE_SCREENSHOTS=docs/console $(VENV)/bin/pytest tests/console/test_browser.py -m integration -q

bench-console: install ## console page server time on a demo home (median per page)
	$(PY) bench/console.py

test-airflow: ## DAG tests with real Airflow (own venv and SQLite DB, scripts/services/airflow.sh)
	bash scripts/services/airflow.sh start
	bash scripts/services/airflow.sh run python -m pytest tests/dags -m integration -q

services-up: ## start every service in scripts/services/
	for s in $(SERVICES); do bash "$$s" start; done

services-down: ## stop every service in scripts/services/ (and the logical-replication PostgreSQL)
	for s in $(SERVICES); do bash "$$s" stop; done
	bash scripts/services/postgres.sh --logical stop

lint: install ## ruff check, ruff format --check, mypy --strict
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

format: install ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

demo: install ## run the demo (embedded profile)
	$(PY) -m lakehouse.demo

bench: install ## catalog benchmarks
	$(PY) bench/catalog.py

bench-pipeline: install ## TPC-H pipeline benchmarks (ingest, query, demo at SF 0.1 and 1) -> docs/benchmarks.md
	$(PY) bench/pipeline.py --markdown docs/benchmarks.md

up: ## start the cluster profile with docker compose (secrets: docker/.env from docker/.env.example, or ENV_FILE=FILE)
	@docker info >/dev/null 2>&1 || { echo "make up: error: no Docker engine is reachable ('docker info' failed); start Docker, or use the embedded profile" >&2; exit 1; }
	@test -f "$(or $(ENV_FILE),docker/.env)" || { echo "make up: error: $(or $(ENV_FILE),docker/.env) not found: cp docker/.env.example docker/.env and fill in every secret" >&2; exit 1; }
	$(COMPOSE) --env-file "$(or $(ENV_FILE),docker/.env)" up -d

down: ## stop the docker compose stack (volumes are kept)
	@docker info >/dev/null 2>&1 || { echo "make down: error: no Docker engine is reachable ('docker info' failed)" >&2; exit 1; }
	$(COMPOSE) --env-file "$(or $(ENV_FILE),docker/.env)" down

clean: ## remove caches and build output (keeps .venv and .lakehouse/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache dist build src/*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
