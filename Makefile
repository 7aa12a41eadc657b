# commentsvc — `make run` serves the demo, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck pytest browser node clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	@touch $(STAMP)

## Serve the service with a demo site, moderator and token on http://$(HOST):$(PORT)
run: $(STAMP)
	HOST=$(HOST) PORT=$(PORT) BIN=$(BIN) ./scripts/run-demo.sh

## Lint, format check, type check and the whole test suite
test: $(STAMP) lint typecheck browser node pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Debian's Chromium for the browser tests (installed with apt-get when missing)
browser:
	./scripts/ensure-chromium.sh

## axe-core (pinned in package-lock.json) for the widget's accessibility tests
node:
	./scripts/ensure-node-deps.sh

pytest: $(STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) instance node_modules .pytest_cache .ruff_cache .mypy_cache
