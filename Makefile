# The two commands of the README: `make demo` (the whole method on bundled data) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install demo test test-unit test-slow bench clean

install:
	bash scripts/install.sh

demo: install
	$(PY) -m gauss_hpc.demo --out demo_out

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# the modules alone: no Slurm, no MPI ranks, no minutes-long program runs (for whoever changes one module)
test-unit: install
	$(PY) -m pytest -m "not slurm and not mpi and not program and not slow" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest --runslow $(PYTEST_ARGS)

bench: install
	$(PY) bench/oracles.py; $(PY) bench/train_scaling.py; $(PY) bench/sampling.py; $(PY) bench/jobs.py

clean:
	rm -rf demo_out report runs .pytest_cache
