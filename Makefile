# Kiln: `make demo` runs the main example, `make test` the whole suite. Both create .venv
# (with the cuda extra: numba-cuda and the CUDA 13 wheels compile kernels to PTX, no GPU needed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,cuda]"
	touch $(STAMP)

demo: $(STAMP)
	cd examples && ../$(PY) digits_cnn.py

test: $(STAMP)
	$(PY) -m ruff check framework compiler runtime tests examples
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check framework compiler runtime tests examples

clean:
	rm -rf $(VENV) kiln-ir .pytest_cache
