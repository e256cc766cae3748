# featviz: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
OUT    ?= featviz-demo

.PHONY: demo test test-slow test-oldest wheel lint notebooks docs bench clean browser-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(VENV)/.installed: $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-dev: $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/featviz demo --out $(OUT)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check featviz tests bench

# --durations=25: the 25 slowest tests (setup and call) are listed after the run, so the slow share is visible.
test: lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=25

test-slow: $(VENV)/.installed-dev
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow

# Debian's chromium for the browser tests (tests/viz/test_microscope_browser.py and one in test_explain.py);
# the tests never install anything: without a chromium binary they skip and say to run this target.
# Needs apt-get and root (or sudo). .ci/run calls it before `make test`.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser-deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "chromium: already installed"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "browser-deps: no apt-get here; install chromium by hand or set FEATVIZ_CHROMIUM=/path/to/chromium"; exit 1; \
	fi

# The oldest torch setup.cfg declares (torch>=2.2), with its torchvision, in a second environment.
# numpy<2: torch 2.2 wheels are built against numpy 1.x. TESTS picks a subset (default: the whole suite).
# .ci/run runs it (the whole suite) after `make test`.
OLDEST_VENV := .venv-oldest
OLDEST_PINS := torch==2.2.2 torchvision==0.17.2 "numpy<2"
TESTS ?=

$(OLDEST_VENV)/.installed-dev: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install $(OLDEST_PINS)
	$(OLDEST_VENV)/bin/python -m pip install -e '.[dev]' $(OLDEST_PINS)
	touch $@

test-oldest: $(OLDEST_VENV)/.installed-dev
	$(OLDEST_VENV)/bin/python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	OMP_NUM_THREADS=1 $(OLDEST_VENV)/bin/python -m pytest -q $(TESTS)

# The wheel a user installs (not the editable install), into dist/.
wheel: $(PY)
	$(PY) -m pip wheel --no-deps --no-build-isolation -w dist .

# The API reference (mkdocs.yml, pages under docs/, generated from the docstrings) into site-docs/, strict:
# a broken link or cross-reference fails the build. First every docs/generate/*.py script rewrites the pages
# and figures it owns (slow: CPU-minutes; `make docs GENERATE=` skips them).
GENERATE ?= $(sort $(wildcard docs/generate/*.py))

docs: $(VENV)/.installed
	for script in $(GENERATE); do echo "== $$script"; OMP_NUM_THREADS=1 $(PY) $$script || exit 1; done
	$(PY) -m pip install -e '.[docs]'
	$(VENV)/bin/mkdocs build --strict -d site-docs

notebooks: $(VENV)/.installed-dev
	TQDM_DISABLE=1 FEATVIZ_FAST=$${FEATVIZ_FAST:-0} $(VENV)/bin/jupyter nbconvert --to html --execute --output-dir docs notebooks/*.ipynb

clean:
	rm -rf $(VENV) $(OLDEST_VENV) dist build *.egg-info .pytest_cache .ruff_cache site-docs
