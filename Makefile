# `make demo` and `make test` each build .venv on first use (Python 3.11).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/demo

.PHONY: install test test-fast demo example bench bench-nn clean

$(STAMP): setup.py requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# --no-deps: neural-tangents' tf2jax dependency would install TensorFlow (amf/nt_compat.py).
	$(PY) -m pip install -q --no-deps neural-tangents==0.6.5
	# --no-deps: metaworld 3.1.1 pins mujoco==3.3.0, brax's MJX needs the newer mujoco we have
	# (amf/envs/metaworld_compat.py bridges the one difference); gymnasium's own deps listed.
	$(PY) -m pip install -q --no-deps metaworld==3.1.1 gymnasium==1.4.0 farama-notifications==0.0.6 imageio==2.38.2
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Two pytest workers (pytest-xdist; an idle one takes queued tests from the other): most of the
# suite's time is single-threaded compilation.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal tests

# Skips the tests marked slow (brax environments, subprocesses, end-to-end experiment runs).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow" tests

demo: $(STAMP)
	$(PY) -m launch.reproduce --figures=integrator_gp --scale=quick --workdir=$(WORKDIR)

# amf.suggest by hand on reacher: pre-train, ask, collect, fine-tune, ask again (docs/suggest.md).
example: $(STAMP)
	$(PY) -m examples.lab_loop --workdir=runs/lab_loop

bench: $(STAMP)
	$(PY) -m benchmarks.integrator_gp

bench-nn: $(STAMP)
	$(PY) -m benchmarks.active_finetune

clean:
	rm -rf $(VENV) runs
