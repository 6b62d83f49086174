# Two entry points for a new user: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv on first use and install the package with its dependencies into it, PyTorch at the exact
# releases of constraints.txt (the tested ones; pyproject.toml itself asks only for ranges).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-output

.PHONY: install test lint demo bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --durations=15

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m ruff format --check src tests benchmarks

demo: $(STAMP)
	$(BIN)/ino demo --out $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_evaluate.py
	$(BIN)/python benchmarks/bench_propagate.py
	$(BIN)/python benchmarks/bench_propagate_video.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
