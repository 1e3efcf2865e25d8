# `make demo` and `make test` each build .venv on first use (Python 3.11).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/demo

.PHONY: install test demo bench bench-nn clean

$(STAMP): setup.py requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# --no-deps: neural-tangents' tf2jax dependency would install TensorFlow (amf/nt_compat.py).
	$(PY) -m pip install -q --no-deps neural-tangents==0.6.5
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(PY) -m launch.reproduce --figures=integrator_gp --scale=quick --workdir=$(WORKDIR)

bench: $(STAMP)
	$(PY) -m experiments.bench_integrator_gp

bench-nn: $(STAMP)
	$(PY) -m experiments.bench_active_finetune

clean:
	rm -rf $(VENV) runs
