# MateriaLabs — the two set-up commands are `make demo` and `make test`; the rest is for
# running the distributed stack by hand. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
VENV_PY := $(VENV)/bin/python
PIP := $(VENV_PY) -m pip --disable-pip-version-check
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-x tests/ledger"`.
PYTEST_ARGS ?=
# Instances per service for `make up`, e.g. `make up SCALE="predictor=3 dft_runner=2"`
# (services not named get one; see docs/events.md, "Scale-out").
SCALE ?=
# Go is often installed outside the default PATH; Kubo is built with it.
export PATH := $(PATH):/usr/local/go/bin

# The install is redone only when what it is made from changes.
INSTALL_INPUTS := $(wildcard requirements.lock) pyproject.toml $(wildcard infra/gpaw/install.sh) \
	$(wildcard infra/browser/install.sh)
INSTALL_KEY := $(shell cat $(INSTALL_INPUTS) | sha256sum | cut -c1-16)
INSTALL_STAMP := $(VENV)/.materialabs-installed-$(INSTALL_KEY)

.PHONY: help venv install infra test demo up down status bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

venv: $(VENV_PY) ## create the virtual environment (.venv, Python 3.11)

$(VENV_PY):
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found on PATH; install Python 3.11 (e.g. apt-get install python3.11-venv, or pyenv install 3.11) or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

install: $(INSTALL_STAMP) ## install pinned dependencies and this project into .venv (cached)

$(INSTALL_STAMP): $(VENV_PY)
	@if [[ -f requirements.lock ]]; then \
		echo "make: installing pinned dependencies from requirements.lock"; \
		$(PIP) install -q -r requirements.lock; \
	else \
		echo "make: no requirements.lock; installing from pyproject.toml"; \
		$(PIP) install -q -e '.[dev]'; \
	fi
	$(PIP) install -q --no-deps -e .
	@if [[ -f infra/gpaw/install.sh ]]; then VENV="$(abspath $(VENV))" bash infra/gpaw/install.sh; fi
	@bash infra/browser/install.sh || echo "make: no Chromium; everything but the browser tests works without it" >&2
	@rm -f $(VENV)/.materialabs-installed-*
	@touch $@

infra: ## fetch the Kafka broker jars and build Kubo (cached in ~/.cache/materialabs)
	@bash infra/fetch.sh

test: install infra ## install, then run the whole suite (fixtures start real Kafka + Kubo)
	$(VENV_PY) -m pytest -rA $(PYTEST_ARGS)

demo: install ## install, then run the demo campaign on the embedded runtime
	$(VENV)/bin/materialabs demo

up: install infra ## start what is not running (Kafka, Kubo, services) on the state kept in run/; SCALE="predictor=3 dft_runner=2"
	@SCALE="$(SCALE)" bash infra/up.sh

down: ## stop what `make up` started (every instance); run/ state stays for the next `make up`
	@bash infra/down.sh

status: ## show whether Kafka, Kubo and each service instance are up, and which one leads
	@bash infra/status.sh

bench: install ## run every benchmark (quick mode where a benchmark offers one)
	@for bench in benchmarks/*.py; do \
		if grep -q -- '--quick' "$$bench"; then args=--quick; else args=; fi; \
		echo "== $$bench $$args"; \
		$(VENV_PY) "$$bench" $$args; \
	done

lint: install ## ruff
	$(VENV)/bin/ruff check .

clean: ## stop everything and DELETE run/ state: ledger, keys, catalog, Kafka log, Kubo repo (caches in ~/.cache stay)
	@bash infra/clean.sh
