# liprobe: two commands on a fresh machine (Python 3.11, pip, gcc):
#   make demo   create .venv, install liprobe (what the demo needs), run `liprobe demo -o out/`
#   make test   create .venv if needed, install liprobe with the test tools, run every test
#   make test-fast   the tests not marked slow (no demo, Dask cluster, browser), while working
#   make info   `liprobe info` on every real APT file of ../shared/data/real
#   make docs   the API reference from the docstrings: docs/_build/html/index.html
#   make lint   ruff and mypy, at the versions pinned in pyproject.toml's `lint` extra
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared
OUT    ?= out

.PHONY: install demo info test test-fast docs lint bench clean

# liprobe and what it runs on (what the demo needs), then the test and lint tools on top
$(BIN)/.installed: pyproject.toml
	@echo "make: creating $(VENV) and installing liprobe with its dependencies (about 1.5 GB; a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.test-installed: $(BIN)/.installed pyproject.toml
	@echo "make: installing the test and lint tools into $(VENV) (pytest, hypothesis, selenium, peer readers, ruff, mypy)"
	$(BIN)/python -m pip install --quiet -e ".[test,lint]"
	touch $@

install: $(BIN)/.installed

# Main job: simulate the paper's study, analyse it, write $(OUT)/report.html.
demo: install
	@echo "make: running liprobe demo -o $(OUT)/ (about 80 s on 2 cores once compiled; writes 2.1 GB)"
	$(BIN)/liprobe demo -o $(OUT)/

# Describe every real APT file we ship tests with.
info: install
	@for f in $(SHARED)/data/real/*/*; do \
	  case "$$f" in *.md|*.env) continue;; esac; \
	  $(BIN)/liprobe info "$$f" || exit 1; echo; \
	done

test: $(BIN)/.test-installed
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/.test-installed
	$(BIN)/python -m pytest -q -m "not slow"

# ruff's and mypy's settings: pyproject.toml ([tool.ruff], [tool.mypy]: the checked files)
lint: $(BIN)/.test-installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# Sphinx (numpydoc, myst-parser; the `docs` extra's pinned versions), warnings as
# errors, no network (docs/conf.py: no intersphinx, the bundled alabaster theme).
$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(BIN)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(BIN)/.test-installed
	$(BIN)/python bench/io.py
	$(BIN)/python bench/core.py
	$(BIN)/python bench/surfaces.py
	$(BIN)/python bench/demo.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis docs/_build .mypy_cache \
	  .ruff_cache
