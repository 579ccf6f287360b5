# Every target bootstraps .venv itself: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench check docs fmt clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Development only: lets the catalog's writes be tried (python -m kit.security.tokens mints a
# token for it). Any real deployment sets its own key; an environment value wins over this one.
run: export KIT_AUTH_JWT_SECRET ?= kit-development-only-secret-never-use-in-production
run: $(STAMP)
	$(BIN)/kit serve $${KIT_APP:-services.bench.app:app}

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/kit bench $(BENCH_ARGS)

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/hadolint --no-color deploy/Dockerfile
	$(BIN)/python -m kit.settings_reference --check
	site=$$(mktemp -d) && NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir "$$site"; \
	  status=$$?; rm -rf "$$site"; exit $$status
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --no-progress .github/workflows

# Regenerates docs/settings.md from kit/settings.py, then builds the site into site/.
docs: $(STAMP)
	$(BIN)/python -m kit.settings_reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .kit .tox .mypy_cache .ruff_cache site
