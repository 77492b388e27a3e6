# One entry point for people and CI. `make run` and `make test` install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format typecheck pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/vidgate serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: install
	$(BIN)/mypy

# The suite runs on an embedded PostgreSQL; when VIDGATE_TEST_DATABASE_URL names a server
# (CI sets it to the machine's PostgreSQL service), the database tests run against it as well.
pytest: install
	env -u VIDGATE_TEST_DATABASE_URL $(BIN)/pytest
	if [ -n "$$VIDGATE_TEST_DATABASE_URL" ]; then $(BIN)/pytest -m "not e2e"; fi

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/tasks.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
