# Two commands on a fresh machine: `make demo` (main job) and `make test` (the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test lint typecheck docs docs-build docs-devices docs-tutorials bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/memxbar demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# mypy on the package (config: [tool.mypy] in pyproject.toml), then on the benchmark scripts
# but the two fuzzers, whose cases pass wrong types on purpose
typecheck: $(STAMP)
	$(PY) -m mypy
	$(PY) -m mypy $(filter-out benchmarks/fuzz_%,$(wildcard benchmarks/*.py))

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,docs]'
	touch $(DOCS_STAMP)

# The documentation site (MkDocs + Material + mkdocstrings, docs/index.md): generate the API
# pages and the device library from the code, run every tutorial, build with warnings as
# errors into build/site. `make docs` also serves it on http://127.0.0.1:8000.
docs-build: $(DOCS_STAMP)
	$(PY) -m docs.gen.api
	$(MAKE) -j2 docs-devices docs-tutorials  # the two generators side by side (two cores)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-devices: $(DOCS_STAMP)
	$(PY) -m docs.gen.devices

docs-tutorials: $(DOCS_STAMP)
	$(PY) -m docs.gen.tutorials

docs: docs-build
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --strict -a 127.0.0.1:8000

clean:
	rm -rf $(VENV) runs build/site build/docs-tutorials docs/generated
