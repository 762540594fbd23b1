# `make serve` starts the server on in-memory persistence; `make test` runs every test.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: serve test lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

serve: $(VENV)/.installed
	$(BIN)/agent-server

test: $(VENV)/.installed
	scripts/ensure-postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

bench: $(VENV)/.installed
	scripts/ensure-postgres
	$(BIN)/python -m bench.checkpointer
	$(BIN)/python -m bench.http
	$(BIN)/python -m bench.http --graph slow
