# Everything goes through .venv, created on first use from pyproject.toml.
PORT ?= 8001
# Server processes for `make serve` (WORKERS=1 for one); empty: one per core.
WORKERS ?=
DB ?= kb.db
SOURCES ?= harvest/sources.yml
CURATED ?= harvest/curated
VENV := .venv
PY := $(VENV)/bin/python
KB := $(VENV)/bin/kb
# Datasette's settings live in settings.json only (read by `kb serve`, `kb publish` and the tests).

.PHONY: install serve test harvest build eval bench screenshots publish

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

serve: install build/inspect-data.json
	$(KB) serve --db $(DB) --inspect-file build/inspect-data.json --port $(PORT) $(if $(WORKERS),--workers $(WORKERS))

build/inspect-data.json: $(DB) | install
	mkdir -p build
	$(VENV)/bin/datasette inspect $(DB) --inspect-file $@

test: install
	$(PY) -m pytest -q

# The weekly refresh (.github/workflows/harvest.yml runs exactly this; tests/test_refresh.py runs
# it against the fake services). Exit status 3 means harvested with something left unresolved
# (inputs not found, or ClinicalTrials.gov or Crossref not reached; listed): still worth a build.
harvest: install
	$(KB) harvest --db $(DB) --sources $(SOURCES) || { code=$$?; [ $$code -eq 3 ] && \
		echo "kb harvest: exit status 3 (harvested; something left unresolved, listed above); building" >&2; }
	$(MAKE) build

build: install
	$(KB) build --db $(DB) --curated $(CURATED)
	$(PY) scripts/soundness.py $(DB)

eval: install
	$(PY) scripts/eval_tags.py

bench: install
	$(PY) scripts/bench_harvest.py
	$(PY) scripts/bench_tag.py
	$(PY) scripts/bench_serve.py $(DB)
	$(PY) scripts/bench_registries.py

publish: install
	$(KB) publish --db $(DB) --out build/publish

screenshots: install
	$(PY) tests/test_browser.py $(DB) docs
	$(PY) tests/test_browser_evidence.py $(DB) docs
