# The two set-up commands a fresh clone needs: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test lint types unit bench stress clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,uvloop,bench]'
	touch $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/aiokv serve --data ./data

lint: $(STAMP)
	$(VENV)/bin/ruff check aiokv tests bench
	$(VENV)/bin/ruff format --check aiokv tests bench

types: $(STAMP)
	$(VENV)/bin/mypy aiokv

unit: $(STAMP)
	$(PY) -m pytest --cov --cov-report=term:skip-covered

test: lint types unit

bench: $(STAMP)
	$(PY) bench/db_bench.py --profile quick
	$(PY) bench/lsm_bench.py --profile quick
	$(PY) bench/btree_bench.py --profile quick

stress: $(STAMP)
	AIOKV_STRESS=1 $(PY) -m pytest tests/crash -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
