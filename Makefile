# townhall: `make run` serves the embedded defaults at http://127.0.0.1:8000; `make test` runs the suite.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export PATH := $(HOME)/.local/bin:$(PATH)
export UV_PYTHON_DOWNLOADS := never

.PHONY: uv install run test lint fmt bench clean audit fuzz

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --user --quiet uv || python3 -m pip install --quiet --break-system-packages uv

install: uv
	uv sync --frozen --compile-bytecode

run: install
	uv run townhall migrate
	uv run townhall demo --if-empty
	uv run townhall serve --host 127.0.0.1 --port 8000

test: install
	bash scripts/test-deps.sh
	uv run pytest $(PYTEST_ARGS)

lint: install
	uv run ruff format --check src tests migrations bench
	uv run ruff check src tests migrations bench
	uv run mypy

# Known vulnerabilities in the locked dependencies (needs PyPI's per-version JSON API or OSV).
audit: uv
	mkdir -p var && uv export --frozen --format requirements-txt --no-emit-project > var/audit-requirements.txt
	uvx pip-audit --requirement var/audit-requirements.txt --no-deps --disable-pip --strict

# Long fuzz runs (CI runs the same tests with a few examples each).
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5000} FUZZ_API_EXAMPLES=$${FUZZ_API_EXAMPLES:-100} uv run pytest -q --timeout=1800 tests/fuzz $(PYTEST_ARGS)

fmt: install
	uv run ruff format src tests migrations bench
	uv run ruff check --fix src tests migrations bench

bench: install
	bash scripts/test-deps.sh
	@for b in bench/*.py; do echo "== $$b"; uv run python $$b || exit 1; done

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache

# Rebuild the committed browser bundles (web/static/vendor/) from frontend/ with the locked npm packages.
.PHONY: bundle
bundle:
	cd frontend && npm ci --no-audit --no-fund && npm run build
