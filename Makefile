# `make demo` and `make test` work on a fresh machine: each creates .venv if needed,
# installs the project (editable) with what it needs, then runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PKGS   := transports rpmsg remoteproc platforms aioamp

.PHONY: demo demo-kernel test test-slow lint typecheck clean kernel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast,test,omap4,bench]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/aioamp demo

# The Linux kernel (User-Mode Linux, `make kernel` first) as the host of an aioamp remote.
demo-kernel: $(VENV)/.demo-installed
	$(BIN)/aioamp demo --platform uml

lint: $(VENV)/.test-installed
	$(BIN)/ruff check $(PKGS) tests $(wildcard benchmarks examples)
	$(BIN)/ruff format --check $(PKGS) tests $(wildcard benchmarks examples)

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy --strict $(PKGS) $(wildcard benchmarks examples)

test: lint typecheck
	$(BIN)/python -m pytest -q -m "not slow"

# The soak tests (marked slow): 100k messages per direction, in-process and between processes.
test-slow: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -m slow

# The User-Mode Linux kernel the `kernel` tests boot (build/uml/linux; docs/kernel.md). Needs
# Debian's linux-source-6.12 flex bison bc kmod; reuses a build whose inputs have not changed.
kernel:
	kernel/build.sh

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
