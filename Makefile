# Two entry points for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
# make run PORT=8080 HOST=127.0.0.1
PORT ?= 8000
HOST ?= 127.0.0.1
BIN := $(VENV)/bin
# pytest-xdist processes for make test (one per core of the 2-core reference machine); a
# module's tests stay on one process (tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: run test lint typecheck unit bench zoo clean native

# The simulator's hot modules compiled with mypyc (isosched/native.py): rebuilt when a source of
# the simulator changes; without a C compiler or mypy everything runs as pure Python.
NATIVE_SOURCES := $(wildcard isosched/native.py isosched/sim/*.py isosched/sim/policies/*.py)

$(BIN)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[native]'
	touch $@

$(BIN)/.installed-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(BIN)/.installed-run

isosched/_native.json: $(BIN)/.installed-run $(NATIVE_SOURCES)
	@echo "compiling the simulator's hot modules with mypyc: 1-2 minutes, once per change of isosched/sim ..."
	-$(BIN)/python -m isosched.native_build

## native: compile the simulator's hot modules (mypyc; the same results, about twice as fast)
native: isosched/_native.json

## run: the service on $(HOST):$(PORT) (default 127.0.0.1:8000) with the zoo and an ad_urban replay
run: $(BIN)/.installed-run native
	$(BIN)/isosched serve --host $(HOST) --port $(PORT) --demo

## test: ruff, mypy and pytest
test: lint typecheck unit

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed-dev
	$(BIN)/mypy

unit: $(BIN)/.installed-dev native
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

## bench: the benchmarks in bench/ (needs the bench extra for peers)
bench: $(BIN)/.installed-dev
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/zoo_load_bench.py

## zoo: regenerate models/*.json and models/MANIFEST.json from the builders
zoo: $(BIN)/.installed-run
	$(BIN)/isosched models build models

clean:
	-$(BIN)/python -m isosched.native_build clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
