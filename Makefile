# Two entry points for a fresh machine: `make demo` (the main job on built-in data) and `make test`.
# torch==2.13.0 is installed first and pinned: a looser requirement pulls a multi-GB CUDA build on CPU machines.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean-venv

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[torch,dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/stereo-trt demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
