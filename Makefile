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

.PHONY: demo test install browser-deps node-deps test-js lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip

# Re-installs when setup.py changes; torch is installed first so the `torch>=2.1` requirement is already met.
$(VENV)/.installed: setup.py | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $@

install: $(VENV)/.installed

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

test: install browser-deps lint test-js
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) examples/train_mnist.py --logdir $(DEMO_LOGDIR) --skip-existing
	@echo "Starting TensorBoard: open the URL below and choose the DVI tab (Ctrl-C to stop)."
	@echo "Opening the tab queues every step for projection in the background (about 10-20 s a step on 2 CPU cores)."
	$(VENV)/bin/tensorboard --logdir $(DEMO_LOGDIR) --port $(PORT) --dvi_autoproject all

bench: install
	$(PY) benchmarks/bench_snapshot.py

clean:
	rm -rf $(VENV) build *.egg-info $(DEMO_LOGDIR)
