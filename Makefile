# The only entry points a newcomer needs. Every target creates and uses the project virtualenv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit e2e lint format bench emulators clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "meshkit needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshkit demo

test: $(STAMP) lint
	scripts/install-emulators.sh
	scripts/install-gcp-emulators.sh
	scripts/install-checkov.sh
	MESHKIT_REQUIRE_EMULATORS=$${MESHKIT_REQUIRE_EMULATORS:-0} $(BIN)/python -m pytest -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check meshkit pipelines governance monitoring tests bench domains policies
	$(BIN)/ruff format --check meshkit pipelines governance monitoring tests bench domains policies
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format meshkit pipelines governance monitoring tests bench domains policies
	$(BIN)/ruff check --fix meshkit pipelines governance monitoring tests bench domains policies

bench: $(STAMP)
	$(BIN)/python bench/replay_throughput.py

emulators: $(STAMP)
	scripts/install-emulators.sh
	scripts/install-gcp-emulators.sh
	scripts/install-checkov.sh

clean:
	rm -rf .meshkit build
