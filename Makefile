# `make serve` starts the server on in-memory persistence; `make test` runs every test.
# Both create the virtual environment in .venv on first use.
# `make chat-ui-e2e` drives LangChain's Agent Chat UI against the server (outside CI, see README).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
JS = tests/js

.PHONY: serve test lint bench chat-ui-e2e

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

serve: $(VENV)/.installed
	$(BIN)/agent-server

# The JS SDK suite's packages, exactly as package-lock.json pins them (npm writes the hidden
# lockfile node_modules/.package-lock.json on every install; touch keeps it newer than its inputs).
$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json $(JS)/package.json
	cd $(JS) && npm ci --no-audit --no-fund
	touch $@

test: $(VENV)/.installed $(JS)/node_modules/.package-lock.json
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

# Outside CI: needs Chromium, Node and a checkout of the UI (AGENT_CHAT_UI_DIR); see e2e/chat-ui/run.sh.
chat-ui-e2e: $(VENV)/.installed
	e2e/chat-ui/run.sh
