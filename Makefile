# Quick start: `make book` (install, execute every chapter, build the HTML book) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
# pip's local-index warnings on this machine are noise; everything else is shown
QUIET := { grep -v "^WARNING: Location" || true; }
CHAPTERS := $(sort $(wildcard book/ch*.ipynb)) book/precision.ipynb  # the appendix reads a stored study
export MMLESSON_BATCH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install book html test clean

install: $(STAMP)

# The pinned environment (requirements.txt), then mmlesson itself in editable mode.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	set -o pipefail; $(PIP) -r requirements.txt 2>&1 | $(QUIET)
	set -o pipefail; $(PIP) --no-deps -e . 2>&1 | $(QUIET)
	$(PY) -c "import mmlesson, torch, papermill, nbval, jupyter_book" 
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mmlesson)" > /dev/null
	touch $@

# The chapters' shared run store, one per version of the package's code: an interrupted `make book`
# resumes where it stopped, and a change to the code never reads back runs the old code trained.
CODE_HASH = $(shell cat $$(find mmlesson -name '*.py' -o -name '*.toml' | sort) | sha256sum | cut -c1-12)

# Execute every chapter on its defaults with papermill (in place, atomically), then build the HTML.
book: $(STAMP)
	MMLESSON_RESULTS=$(CURDIR)/_build/results/$(CODE_HASH) $(PY) -m mmlesson.notebooks execute $(CHAPTERS)
	$(MAKE) --no-print-directory html

# Build the HTML from the stored notebooks as they are (no execution).
html: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html/index.html"

# The unit tests on two single-threaded processes; the chapters' smoke runs (SynthAV and a real-data cache) two
# at a time, each training in its own process; then the chapters (nbval re-executes each on its defaults) one at
# a time: each chapter trains on its own two worker processes, so nothing shares a core.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow"
	MMLESSON_WORKERS=1 $(PY) -m pytest -q -n 2 --dist worksteal -m "slow and smoke"
	$(PY) -m pytest -q -m "slow and not smoke"

clean:
	rm -rf _build
