# Everything goes through .venv, created on first use from pyproject.toml.
PORT ?= 8001
DB ?= kb.db
VENV := .venv
PY := $(VENV)/bin/python
KB := $(VENV)/bin/kb
DATASETTE_SETTINGS := --setting sql_time_limit_ms 3000 --setting max_returned_rows 2000 \
	--setting default_page_size 50 --setting allow_download off

.PHONY: install serve test harvest build eval bench screenshots

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

serve: install build/inspect-data.json
	$(VENV)/bin/datasette serve -i $(DB) --inspect-file build/inspect-data.json -m metadata.yml \
		--plugins-dir plugins --template-dir templates --static static:static $(DATASETTE_SETTINGS) -h 127.0.0.1 -p $(PORT)

build/inspect-data.json: $(DB) | install
	mkdir -p build
	$(VENV)/bin/datasette inspect $(DB) --inspect-file $@

test: install
	$(PY) -m pytest -q

harvest: install
	$(KB) harvest --db $(DB)
	$(MAKE) build

build: install
	$(KB) build --db $(DB)
	$(PY) scripts/soundness.py $(DB)

eval: install
	$(PY) scripts/eval_tags.py

bench: install
	$(PY) scripts/bench_harvest.py
	$(PY) scripts/bench_tag.py

screenshots: install
	$(PY) tests/test_browser.py $(DB) docs
	$(PY) tests/test_browser_evidence.py $(DB) docs
