# `make demo` and `make test` work on a fresh machine: each creates .venv if needed,
# installs the project (editable) with what it needs, then runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PKGS   := transports rpmsg remoteproc platforms aioamp docs/hooks.py

.PHONY: demo demo-kernel test test-asyncio test-trio test-slow lint typecheck docs clean kernel firmware

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fast,test,omap4,bench,docs,emu]'
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

test: lint typecheck test-asyncio test-trio

test-asyncio: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -m "not slow"

# The modules marked `trio` again, on anyio's trio backend: pytest-asyncio off, anyio's plugin
# drives every async test (tests/conftest.py says how).
test-trio: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -m "trio and not asyncio_only and not slow" -p no:asyncio \
		-o anyio_mode=auto -W "ignore:Unknown config option:pytest.PytestConfigWarning"

# The documentation site, built strictly (a broken reference or link fails): site/.
docs: $(VENV)/.test-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The tests marked slow: the soaks (100k messages per direction, in-process and between
# processes) and the packaging test (sdist and wheel built, the wheel run from a fresh venv).
test-slow: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -m slow

# The User-Mode Linux kernel the `kernel` tests boot (build/uml/linux; docs/kernel.md). Needs
# Debian's linux-source-6.12 flex bison bc kmod; reuses a build whose inputs have not changed.
kernel:
	kernel/build.sh

# The project's Cortex-M firmware (firmware/, arm-none-eabi-gcc): reproducible images that are
# committed, so `make test` needs no cross compiler; a test rebuilds and compares when it can.
# The compiler on Debian/Ubuntu: apt-get update && apt-get install -y gcc-arm-none-eabi
firmware:
	@command -v arm-none-eabi-gcc >/dev/null || { echo "arm-none-eabi-gcc not found:" \
	    "apt-get update && apt-get install -y gcc-arm-none-eabi" >&2; exit 1; }
	$(MAKE) -C firmware

clean:
	rm -rf $(VENV) build site *.egg-info .mypy_cache .pytest_cache .ruff_cache
