# The two set-up commands for a fresh machine (see README.md):
#   make quickstart   create .venv if missing, install, run the main job
#   make test         create .venv if missing, install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export WANDB_MODE ?= offline

.PHONY: install quickstart test bench clean

install: $(VENV)/.installed

# torch is pinned first: a CPU wheel of 2.13.0 is on our machines; a looser requirement would pull CUDA.
$(VENV)/.installed: pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@ldconfig -p | grep -q libEGL.so.1 || (apt-get update -qq && apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	@touch $@

quickstart: install
	$(BIN)/python -m vid2act.agents.quickstart

# The suite runs in PYTEST_WORKERS processes (pytest-xdist; each test is single-threaded): 2 on our 2-core
# machines. `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= 2

test: install
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

bench: install
	$(BIN)/python benchmarks/env_throughput.py

clean:
	rm -rf $(VENV) outputs multirun
