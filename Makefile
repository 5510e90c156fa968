# liprobe: two commands on a fresh machine (Python 3.11, pip, gcc):
#   make demo   create .venv, install liprobe, run `liprobe demo -o out/` (out/report.html)
#   make test   create .venv if needed, install, run the whole test suite
#   make info   `liprobe info` on every real APT file of ../shared/data/real
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SHARED ?= ../shared
OUT    ?= out

.PHONY: install demo info test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

# Main job: simulate the paper's study, analyse it, write $(OUT)/report.html.
demo: install
	$(BIN)/liprobe demo -o $(OUT)/

# Describe every real APT file we ship tests with.
info: install
	@for f in $(SHARED)/data/real/*/*; do \
	  case "$$f" in *.md|*.env) continue;; esac; \
	  $(BIN)/liprobe info "$$f" || exit 1; echo; \
	done

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/io.py
	$(BIN)/python bench/core.py
	$(BIN)/python bench/demo.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis
