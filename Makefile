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

.PHONY: help install lint test test-fast test-render test-e2e test-containers demo bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/mlops-scaffold: pyproject.toml
	@command -v uv >/dev/null || { echo "uv is required: pip install uv" >&2; exit 1; }
	uv venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[dev]'
	@touch $@

install: $(BIN)/mlops-scaffold ## Create .venv with the tool (editable) and dev tools

lint: install ## ruff + mypy --strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src
	$(BIN)/mypy src

test-fast: install ## Unit and update tests (seconds)
	$(BIN)/pytest -q -m "not slow and not render and not containers"

test-render: install ## Render every profile and run each generated project's ruff + pytest
	$(BIN)/pytest -q -m render

test-e2e: install ## Fresh venv, wheel install, new, make setup, make verify (minutes)
	$(BIN)/pytest -q -m slow

test-containers: install ## Private dockerd, base images, the startup stack built and run (root)
	$(BIN)/pytest -q -rs -m containers

test: lint ## Everything: lint, unit, update, render and end-to-end tests
	$(BIN)/pytest -q -rs --durations=10

demo: install ## Generate the startup project into $(DEMO_DIR), set it up and verify it
	rm -rf $(DEMO_DIR)
	$(BIN)/mlops-scaffold new $(DEMO_DIR) --profile startup --defaults
	$(MAKE) -C $(DEMO_DIR) setup
	$(BIN)/mlops-scaffold verify $(DEMO_DIR)

bench: install ## Print the performance figures (benchmarks/)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean: ## Remove the venv, caches and the demo project
	rm -rf $(VENV) .demo .cache .pytest_cache .mypy_cache .ruff_cache dist build
