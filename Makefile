# vpcmesh: `make render` renders the mesh in this repository, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export SOPS_DISABLE_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help install system-deps render validate test lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## Install openvpn, age, iproute2, ping (as root on Debian)
	@scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || scripts/install-system-deps.sh
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP) ## Create .venv and install vpcmesh into it

render: $(STAMP) ## Validate and render build/ for every node
	$(BIN)/vpcmesh render

validate: $(STAMP) ## Check mesh/ and nodes/ and report every problem
	$(BIN)/vpcmesh validate

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check tools tests
	$(BIN)/mypy --strict

test: $(STAMP) system-deps lint ## Lint, then run every test (real openvpn, sops, age when root)
	$(BIN)/pytest -q

clean: ## Remove build/ and the virtualenv
	rm -rf build $(VENV)
