# One entry point for people and CI. `make run` and `make test` install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format typecheck pytest bench clean web web-client web-check e2e \
	dist dist-check

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || { \
	  echo "vidgate needs Python 3.11 or newer as '$(PYTHON)' (make PYTHON=python3.12 ...)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "Python's venv module is missing: install it (e.g. 'apt-get install python3-venv')"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The browser app: a static export in web/out that `vidgate serve` serves at /.
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/package.json \
	web/next.config.ts web/tsconfig.json

web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js 20 or newer (with npm) is needed for the web"\
	  "app and its tests: install it (e.g. 'apt-get install nodejs npm')"; exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@

web/out/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build

web: web/out/index.html

# Regenerate the typed API client after changing the API.
web-client: install web/node_modules/.installed
	$(BIN)/vidgate openapi --output web/openapi.json
	cd web && npm run api:generate

web-check: web/node_modules/.installed
	cd web && npm run api:check && npm run typecheck

# Browser tests, on the Chromium scripts/find-browser.sh finds (CHROMIUM_PATH, the
# distribution's, Playwright's) or installs when there is none.
e2e: install web
	@browser="$$(scripts/find-browser.sh)" && echo "browser tests on $$browser" && \
	  cd web && CHROMIUM_PATH="$$browser" npx playwright test

run: install
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: serving the API without the web app (install Node.js 20)"; fi
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
# On the embedded server PYTEST_WORKERS pytest-xdist processes share the tests, each with a server
# of its own; on two cores 2 of them nearly halve the time (PYTEST_WORKERS=0: one process). On a
# named server the run stays in one process: two apps' pools would pass PostgreSQL's default 100
# connections. The wheel's test (marker `dist`) is left to `dist-check`, after the web app is built.
PYTEST_WORKERS ?= 2
pytest: install
	env -u VIDGATE_TEST_DATABASE_URL $(BIN)/pytest -n $(PYTEST_WORKERS) -m "not dist"
	if [ -n "$$VIDGATE_TEST_DATABASE_URL" ]; then $(BIN)/pytest -m "not e2e and not dist"; fi

# An sdist and a wheel in $(DIST_DIR) that carry the web app: web/out is copied into the package
# (src/vidgate/webapp, package data, not in git; removed again after the build) and `python -m
# build` makes the sdist, then the wheel from the sdist, so the wheel is what the sdist rebuilds.
# The wheel installed anywhere serves the pages, the API and the embedded database (`vidgate
# serve`) with no checkout and no Node.js.
DIST_DIR ?= dist
dist: install web
	rm -rf src/vidgate/webapp
	cp -R web/out src/vidgate/webapp
	$(BIN)/python -m build --outdir $(DIST_DIR) . ; status=$$?; \
	  rm -rf src/vidgate/webapp; exit $$status

# The wheel's own test (tests/distribution, marker `dist`, deselected from the pytest pass above):
# it runs `make dist` into a temporary directory, installs the wheel into a fresh venv (its
# dependencies from the package index, or pip's cache) and runs that venv's `vidgate serve`
# outside the checkout: the web app at /, /api/auth/me refused without a token, then an SMS
# sign-in. Slow (a build and a full install), and it needs Node.js for `web`, so it runs here,
# after the web app is built.
dist-check: install web
	env -u VIDGATE_TEST_DATABASE_URL $(BIN)/pytest -n 0 -m dist tests/distribution

test: lint typecheck pytest web-check dist-check e2e

bench: install
	$(BIN)/python bench/run.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/tus.py
	$(BIN)/python bench/labels.py
	$(BIN)/python bench/labels_remux.py
	$(BIN)/python bench/tasks.py --users 50 --compare-api-workers
	$(BIN)/python bench/tasks.py --users 50 --first-channel-failures 0.3

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf web/node_modules web/.next web/out web/test-results
	rm -rf dist build src/vidgate/webapp src/vidgate.egg-info
