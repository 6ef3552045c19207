# gar-analysis — run `make help` to list the targets.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
GAR    := $(VENV)/bin/gar-analysis
STAMP  := $(VENV)/.installed
SAMPLE := data/raw/sample
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

.DEFAULT_GOAL := help
.PHONY: help install sample data check reports cycle test test-all lab clean browser

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) introuvable : installez Python 3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,lab]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(PY) -m gar_analysis.reporting.dsfr
	touch $(STAMP)

install: $(STAMP) ## Create .venv, install the project with its test and lab extras and the DSFR (npm registry)

$(SAMPLE)/truth.json: $(STAMP)
	$(GAR) sample --out $(SAMPLE)

sample: $(SAMPLE)/truth.json ## Write the simulated sample data directory

check: sample ## Run the quality checks on the sample (CSV + HTML quality report)
	$(GAR) check --data $(SAMPLE) --out reports/qualite/constats.csv --html reports/qualite/qualite.html

data: check ## Build the processed tables from the sample (reusing the checks' findings)
	$(GAR) build --data $(SAMPLE) --findings reports/qualite/constats.csv

reports: sample ## Main job on the sample: checks → tables → every audience's pages, portal, glossary, quality page, release notes → digest (dry run); a versioned release in reports/releases/, reports/latest switched when complete
	$(GAR) cycle --data $(SAMPLE) --jobs $(JOBS) --share-dry-run --no-refresh

cycle: sample ## The monthly cycle on the sample, open data refreshed first when reachable (same release as make reports)
	$(GAR) cycle --data $(SAMPLE) --jobs $(JOBS) --share-dry-run

browser: ## Install Debian's headless Chromium for the browser tests (root)
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium non installé : les tests navigateur seront ignorés"; }

test: $(STAMP) browser ## Install, then run the test suite (slow tests excluded), the doctests and the exploration notebooks
	$(PY) -m pytest -n $(JOBS) -m "not slow" --doctest-modules tests gar_analysis
	$(PY) -m pytest -n $(JOBS) --dist loadfile --nbval-lax --nbval-current-env notebooks/exploration

test-all: $(STAMP) browser ## Run every test, slow ones included, the doctests and the exploration notebooks
	$(PY) -m pytest -n $(JOBS) --doctest-modules tests gar_analysis
	$(PY) -m pytest -n $(JOBS) --dist loadfile --nbval-lax --nbval-current-env notebooks/exploration

lab: $(STAMP) ## Start JupyterLab on the landing page of the exploration notebooks
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) notebooks/exploration/00_accueil.ipynb

clean: ## Remove generated data and reports (keeps .venv)
	rm -rf $(SAMPLE) data/processed/*.parquet data/processed/manifest.json data/history reports/*/
