# `make check` is exactly what CI runs (through the README's test command).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: install check lint typecheck layers test package-check format demo

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,demo,tracing]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

layers: install
	$(BIN)/lint-imports

test: install
	bash scripts/ensure-system-deps.sh
	$(BIN)/pytest -q

# The wheel and sdist as a user gets them: built, metadata checked, the wheel installed
# without extras into a fresh virtualenv and run (--help, graph, serve + /health, demo).
package-check: install
	bash scripts/package-check.sh $(PY)

check: lint typecheck layers test package-check

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

demo: install
	bash scripts/ensure-system-deps.sh --demo
	$(BIN)/scenarist demo
