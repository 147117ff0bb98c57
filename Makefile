# DVI for TensorBoard: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch, so a machine without a GPU never downloads a multi-GB CUDA build.
# Override on a GPU machine, e.g. `make demo TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
DEMO_LOGDIR ?= demo_logs
PORT ?= 6006
PYTEST_ARGS ?=

.PHONY: demo test install install-demo browser-deps node-deps test-js lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip

# Re-installs when setup.py changes; torch is installed first so the `torch>=2.1` requirement is already met.
$(VENV)/.installed: setup.py | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $@

install: $(VENV)/.installed

# Only what the demo needs: the package and its requirements, no test or benchmark extras. PYTHONWARNINGS=ignore
# hides setuptools' generic editable-install notice ("Please be careful with folders in your working directory ...").
$(VENV)/.installed-demo: setup.py | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e .
	touch $@

install-demo: $(VENV)/.installed-demo

# Debian's Chromium for the browser tests (Playwright drives it; its own browser download cannot work offline).
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null; \
	else \
		echo "WARNING: chromium is missing and cannot be installed without root: run 'apt-get install chromium' (browser tests will fail under CI=true)"; \
	fi

# Node.js runs the tab's unit tests (`node --test`, no npm packages needed); Debian's package when missing.
node-deps:
	@if command -v node >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's nodejs for the tab's unit tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; \
	else \
		echo "ERROR: node is missing and cannot be installed without root: run 'apt-get install nodejs'"; exit 1; \
	fi

# The tab's pure modules (store, selectors, geometry) under Node's built-in test runner.
test-js: node-deps
	node --test frontend/tests/

lint: install
	$(VENV)/bin/ruff check .

# GPU tests run only where torch sees CUDA; elsewhere they are deselected and reported as not run (never passed).
test: install browser-deps lint test-js
	@if $(PY) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
		$(PY) -m pytest $(PYTEST_ARGS); \
	else \
		echo "GPU tests NOT RUN: torch sees no CUDA device here (tests/test_gpu.py deselected with -m 'not gpu')"; \
		$(PY) -m pytest -m "not gpu" $(PYTEST_ARGS); \
	fi

# TensorBoard starts first (projecting each step as soon as it is logged), then the two demo runs train beside it.
demo: install-demo
	$(PY) examples/demo.py --logdir $(DEMO_LOGDIR) --port $(PORT)

bench: install
	$(PY) benchmarks/bench_snapshot.py

clean:
	rm -rf $(VENV) build *.egg-info $(DEMO_LOGDIR)
