# The two commands README.rst opens with: `make demo` and `make test`.
# Each builds its own virtual environment (under .venvs/) on first use.
PYTHON ?= $(shell sh .ci/python)
VENVS := .venvs
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: demo test lint types unit docs docs-check matrix bench clean

# venv NAME, pip arguments: create .venvs/NAME and install into it when pyproject.toml changes.
$(VENVS)/%/.installed: pyproject.toml
	rm -rf $(VENVS)/$*
	$(PYTHON) -m venv $(VENVS)/$*
	$(VENVS)/$*/bin/python -m pip install $(PIP_QUIET) --upgrade "pip>=25.1"
	$(VENVS)/$*/bin/python -m pip install $(PIP_QUIET) -e . $(GROUPS_$*)
	touch $@

GROUPS_demo := --group test
GROUPS_test := --group test --group toolbar --group observability --group tasks --group scale --group scale-django6 --group lint
GROUPS_docs := --group docs
GROUPS_matrix := --group matrix
GROUPS_bench := --group benchmark --group test
GROUPS_release := --group release

demo: $(VENVS)/demo/.installed
	$(VENVS)/demo/bin/python demo/run.py

test: lint types unit

lint: $(VENVS)/test/.installed
	$(VENVS)/test/bin/ruff check .
	$(VENVS)/test/bin/ruff format --check .

types: $(VENVS)/test/.installed
	$(VENVS)/test/bin/mypy

unit: $(VENVS)/test/.installed
	$(VENVS)/test/bin/python -m pytest $(PYTEST_ARGS)

docs: $(VENVS)/docs/.installed
	$(VENVS)/docs/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The built site in headless Chromium at 1280 and 390 px: tables and figures fit
# their column, tables have headers, images load, internal links resolve
# (docs/sitecheck.py). Screenshots of the key pages go to docs/_screenshots/.
docs-check: docs
	$(VENVS)/docs/bin/python docs/sitecheck.py docs/_build/html

# Python 3.10-3.13 x Django 4.2/5.2/6.0/6.1, for every interpreter present (see noxfile.py),
# then a summary of the pairs that ran, failed or were skipped.
# Server tests on the pairs that hold each Python and Django once (RAINCHECK_MATRIX_SERVERS=all: every pair).
# NOX_ARGS: nox options, then '-- ARGS' for pytest, e.g. NOX_ARGS='-p 3.12 -- -m "not server"'.
MATRIX_REPORT := $(VENVS)/matrix/report.json
matrix: $(VENVS)/matrix/.installed
	@rm -f $(MATRIX_REPORT)
	@start=$$(date +%s); set -x; \
	$(VENVS)/matrix/bin/nox --no-color --report $(MATRIX_REPORT) $(NOX_ARGS); \
	{ status=$$?; set +x; } 2>/dev/null; \
	if [ -f $(MATRIX_REPORT) ]; then \
	  $(VENVS)/matrix/bin/python noxfile.py summary $(MATRIX_REPORT) $$(($$(date +%s) - start)); \
	fi; exit $$status

# Every benchmark, side by side with the peers, into benchmarks/results.json, then
# docs/benchmarks.rst's tables and charts (about 15 minutes; the HTTP parts need wrk).
# BENCH_ARGS='--only micro,scaling' re-measures some parts ('--only throughput': the
# saturated I/O-bound, async and CPU-bound servers and their graceful stops, about
# 5 minutes); see benchmarks/run.py.
bench: $(VENVS)/bench/.installed
	$(VENVS)/bench/bin/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENVS) .nox docs/_build docs/_screenshots dist .pytest_cache .mypy_cache .ruff_cache

# Before a release: the sdist and wheel into dist/, twine's strict
# check of both, then tests/release (the sdist's and wheel's file lists, README's
# usage example from the wheel alone under runserver, .readthedocs.yaml's build).
.PHONY: release-check
release-check: $(VENVS)/release/.installed
	rm -rf dist
	$(VENVS)/release/bin/python -m build --outdir dist .
	$(VENVS)/release/bin/twine check --strict dist/*
	RAINCHECK_DIST=dist $(VENVS)/release/bin/python -m pytest -m release tests/release $(PYTEST_ARGS)
