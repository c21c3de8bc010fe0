# authsvc — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first Python >= 3.11 found on PATH (override: make PYTHON=/path/to/python3.12 ...).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Two workers on a 2-core machine; PYTEST_ARGS adds to them (e.g. PYTEST_ARGS="-k sign_in -x").
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: help install install-test run serve test lint fmt bench openapi openapi-json clean browser

help:
	@echo "make run     start authsvc dev (embedded Cognito emulator, SQLite, dev outbox) on http://$(HOST):$(PORT)/docs"
	@echo "make test    install what the tests need and run the whole suite (lint, template, Dockerfile, pytest)"
	@echo "make bench   run the benchmarks in bench/ (ratios against a baseline in the same run)"
	@echo "make browser install Debian's chromium and chromium-driver for the browser test (as root)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "authsvc needs Python 3.11 or newer on PATH (or make PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-dev

# Everything `authsvc dev` and the tests need (the image installs only the package).
install: $(VENV)/.installed-test

install-test: $(VENV)/.installed-test

run: $(VENV)/.installed-dev
	$(BIN)/authsvc dev --host $(HOST) --port $(PORT)

lint: install-test
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/mypy src
	$(BIN)/cfn-lint infra/template.yaml
	$(BIN)/hadolint Dockerfile

fmt: install-test
	$(BIN)/ruff check --fix --quiet src tests migrations bench || true
	$(BIN)/ruff format --quiet src tests migrations bench

test: lint clients/ts/node_modules/.package-lock.json
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# tests/federation runs oidc-provider (npm) as Cognito's hosted UI: installed into a
# project-local folder from the committed lock file.
FEDERATION_OP := tests/federation/op
test: $(FEDERATION_OP)/node_modules/.installed
$(FEDERATION_OP)/node_modules/.installed: $(FEDERATION_OP)/package-lock.json
	cd $(FEDERATION_OP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The TypeScript client's tools (tests/frontend/test_clients.py), as pinned by package-lock.json.
clients/ts/node_modules/.package-lock.json: clients/ts/package.json clients/ts/package-lock.json
	cd clients/ts && npm ci --no-audit --no-fund

# tests/spa/test_browser.py drives headless Chromium through Selenium, with the browser and
# driver from Debian (Selenium Manager never downloads one). Without them that test skips on
# a laptop and fails under CI=true; .ci/run installs them the same way.
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
BROWSER_PACKAGES := chromium chromium-driver

browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then \
		echo "$(CHROMIUM) and $(CHROMEDRIVER) are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y $(BROWSER_PACKAGES) \
			|| { apt-get update && apt-get install -y $(BROWSER_PACKAGES); }; \
	else \
		echo "The browser test needs $(CHROMIUM) and $(CHROMEDRIVER). Install them as root:"; \
		echo "  sudo make browser    (or: sudo apt-get install -y $(BROWSER_PACKAGES))"; \
		exit 1; \
	fi

bench: install-test
	$(BIN)/python bench/run.py

openapi: install
	@$(BIN)/authsvc openapi

# The committed docs/openapi.json (tests/test_openapi.py fails when it drifts from the app).
openapi-json: install
	$(BIN)/authsvc openapi > docs/openapi.json

clean:
	rm -rf $(VENV) .authsvc .pytest_cache .ruff_cache build *.egg-info src/*.egg-info

# Issue 16 (deployment). `docker compose config` validates docker-compose.yml where the compose
# plugin exists; tests/test_infra.py checks its structure everywhere.
.PHONY: compose-config lambda-package
test: compose-config
compose-config:
	@if docker compose version >/dev/null 2>&1; then \
		AUTHSVC_SECRET_KEY=compose-config-check-key \
			docker compose -f docker-compose.yml --profile local config --quiet \
			&& echo "docker compose config: docker-compose.yml is valid"; \
	else \
		echo "docker compose is not installed: docker-compose.yml is checked by tests/test_infra.py"; \
	fi

# The AWS Lambda package (README, "Serverless"): authsvc, mangum and their Linux wheels for the
# function's runtime, and the migrations, in build/authsvc-lambda.zip.
LAMBDA_PYTHON ?= 3.12
LAMBDA_PLATFORM ?= manylinux2014_x86_64
lambda-package: | $(BIN)/python
	rm -rf build/lambda build/wheels build/authsvc-lambda.zip
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir build/wheels .
	$(BIN)/python -m pip install --quiet --target build/lambda --implementation cp \
		--python-version $(LAMBDA_PYTHON) --platform $(LAMBDA_PLATFORM) --only-binary=:all: \
		build/wheels/authsvc-*.whl 'mangum>=0.17'
	cp -r migrations build/lambda/migrations
	cd build/lambda && ../../$(BIN)/python -m zipfile -c ../authsvc-lambda.zip *
	@echo "build/authsvc-lambda.zip"
