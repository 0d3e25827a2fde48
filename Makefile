# Quick start: `make book` (install, execute every chapter, build the HTML book) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHAPTERS := $(sort $(wildcard book/ch*.ipynb))
export MMLESSON_BATCH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install book execute html test clean

install: $(STAMP)

# The pinned environment (requirements.txt), then mmlesson itself in editable mode.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import mmlesson, torch, papermill, nbval, jupyter_book" 
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mmlesson)" > /dev/null
	touch $@

# Execute every chapter on its defaults with papermill (in place, atomically), then build the HTML.
book: execute html

execute: $(STAMP)
	$(PY) -m mmlesson.notebooks execute $(CHAPTERS)

html: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html/index.html"

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf _build
