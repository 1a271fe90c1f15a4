# PocketKube. `make help` lists the targets.
SHELL := /bin/bash
PY    := .venv/bin/python
PYTEST := .venv/bin/pytest
APT_PACKAGES := etcd-server docker.io docker-registry socat mmdebstrap iproute2 busybox-static psmisc curl procps shellcheck vagrant
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: .venv/.installed ## install OS packages (Debian/Ubuntu, as root) and the Python environment
	@scripts/apt-install.sh $(APT_PACKAGES)

.venv/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

proto: ## regenerate pkapi/v1 from proto/
	scripts/genproto.sh

verify-proto: .venv/.installed ## fail if pkapi/v1 differs from what proto/ generates
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && scripts/genproto.sh $$tmp && \
	for f in $$tmp/pkapi/v1/*; do cmp -s $$f pkapi/v1/$$(basename $$f) || { echo "pkapi/v1/$$(basename $$f) is out of date: run make proto"; exit 1; }; done && \
	for f in pkapi/v1/*_pb2*; do test -e $$tmp/pkapi/v1/$$(basename $$f) || { echo "$$f has no .proto"; exit 1; }; done && echo "generated code is up to date"

lint: .venv/.installed ## ruff, the import-linter contracts (layers, pure modules) and the import-cycle check
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	$(PY) scripts/import-cycles.py
	$(PY) scripts/pure-modules.py

typecheck: .venv/.installed ## mypy over the programs; pkapi (not its generated pkapi/v1) with --strict
	.venv/bin/mypy pkapi cli agent controlplane
	.venv/bin/mypy --strict pkapi

test-unit: .venv/.installed ## unit tests (no etcd, no Docker)
	$(PYTEST) tests/unit -q

test-integration: setup images ## integration tests (real etcd and Docker Engine)
	scripts/with-dockerd.sh $(PYTEST) tests/integration -q

test: setup ## everything: verify-proto, lint, typecheck, unit, integration and e2e tests
	$(MAKE) --no-print-directory verify-proto lint typecheck
	scripts/with-dockerd.sh $(MAKE) --no-print-directory images
	scripts/with-dockerd.sh $(PYTEST) tests -q -p no:cacheprovider

clean: ## remove the virtualenv and caches
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache

.PHONY: help setup proto verify-proto lint typecheck test test-unit test-integration clean

# Each subsystem adds its own targets (images, bench-*, demo, ...) here.
-include mk/*.mk
