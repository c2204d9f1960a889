# Kiln: `make demo` runs the main example, `make test` the whole suite. Both create .venv
# (with the cuda extra: numba-cuda and the CUDA 13 wheels compile kernels to PTX, no GPU needed;
# the mpi extra: mpi4py and MPICH, for the multi-worker tests under mpiexec; the onnx extra:
# onnx and onnxruntime, which check the ONNX export).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,cuda,mpi,onnx,serve,tensorboard,plot]"
	touch $(STAMP)

demo: $(STAMP)
	cd examples && ../$(PY) digits_cnn.py

test: $(STAMP)
	$(PY) -m ruff check framework compiler runtime tests examples
	$(PY) -m pytest -n auto  # one worker per core (pytest-xdist): compiles run in parallel

# Benchmarks beside TensorFlow, JAX and PyTorch: their own venv, kept out of .venv.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/run.py

lint: $(STAMP)
	$(PY) -m ruff check framework compiler runtime tests examples

clean:
	rm -rf $(VENV) $(BENCH_VENV) kiln-ir .pytest_cache
