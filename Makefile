# mlops-scaffold developer commands. Two matter on a fresh machine:
#   make demo   install, generate the startup project, set it up and verify it end to end
#   make test   lint + the whole test suite (unit, update, render, end-to-end)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PYTHON_VERSION ?= 3.11
DEMO_DIR ?= .demo/churn-demo
export UV_PYTHON_DOWNLOADS ?= never
export UV_LINK_MODE ?= copy

# uv builds every environment. Not on PATH (a fresh machine with Python, git and make)?
# This pinned version is installed into .cache/uv-bootstrap and used from there.
UV_VERSION := 0.13.8
UV_BOOTSTRAP := $(CURDIR)/.cache/uv-bootstrap
ifndef UV
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_BOOTSTRAP)/bin/uv)
endif
# The tests build generated projects' environments with this uv (tests/envs.py).
export UV

.PHONY: help uv install lint test test-fast test-render test-e2e test-containers test-ci-systems test-torch demo bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV_BOOTSTRAP)/bin/uv:
	@echo "uv not found on PATH: installing uv==$(UV_VERSION) into $(UV_BOOTSTRAP)"
	@rm -rf $(UV_BOOTSTRAP)
	@{ python3 -m venv $(UV_BOOTSTRAP) >/dev/null 2>&1 && \
		$(UV_BOOTSTRAP)/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'; } || \
	{ rm -rf $(UV_BOOTSTRAP) && python3 -m pip install --quiet --disable-pip-version-check \
		--target $(UV_BOOTSTRAP) 'uv==$(UV_VERSION)'; } || \
	{ echo "error: could not install uv==$(UV_VERSION) with python3 (needs python3-venv or pip): install uv yourself" >&2; exit 1; }

uv: | $(UV) ## Install the pinned uv into .cache/uv-bootstrap unless uv is on PATH
	@$(UV) --version

$(BIN)/mlops-scaffold: pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@touch $@

install: $(BIN)/mlops-scaffold ## Create .venv with the tool (editable) and dev tools

lint: install ## ruff + mypy --strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src
	$(BIN)/mypy src

test-fast: install ## Unit and update tests (seconds)
	$(BIN)/pytest -q -m "not slow and not render and not containers and not torch"

test-render: install ## Render every profile and run each generated project's ruff + pytest
	$(BIN)/pytest -q -m "render and not torch"

test-e2e: install ## Fresh venv, wheel install, new, the startup workflow jobs (setup, lint, test, verify)
	$(BIN)/pytest -q -m slow

test-containers: install ## Private dockerd, base images, the startup stack built and run (root)
	$(BIN)/pytest -q -rs -m containers

test-ci-systems: install ## Every profile's CI files checked; the startup GitLab pipeline run with gitlab-ci-local (minutes)
	$(BIN)/pytest -q -rs tests/ci_systems

test-torch: install ## The generated pytest of a model=torch-mlp project (TORCH_FIND_LINKS, /opt/wheels)
	$(BIN)/pytest -q -rs -m torch

test: lint ## Everything but test-torch: lint, unit, update, render, CI systems and end-to-end tests
	$(BIN)/pytest -q -rs --durations=10 -m "not torch"

demo: install ## Generate the startup project into $(DEMO_DIR), set it up and verify it
	rm -rf $(DEMO_DIR)
	$(BIN)/mlops-scaffold new $(DEMO_DIR) --profile startup --defaults
	$(MAKE) -C $(DEMO_DIR) setup UV=$(UV)
	$(BIN)/mlops-scaffold verify $(DEMO_DIR)

bench: install ## Print the performance figures (benchmarks/)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean: ## Remove the venv, caches and the demo project
	rm -rf $(VENV) .demo .cache .pytest_cache .mypy_cache .ruff_cache dist build
