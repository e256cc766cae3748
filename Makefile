# featviz: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
OUT    ?= featviz-demo

.PHONY: demo test test-slow lint notebooks bench clean

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

test: lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test-slow: $(VENV)/.installed-dev
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow

notebooks: $(VENV)/.installed-dev
	FEATVIZ_FAST=$${FEATVIZ_FAST:-0} $(VENV)/bin/jupyter nbconvert --to html --execute --output-dir docs notebooks/*.ipynb

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
