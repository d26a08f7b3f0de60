# Assay: one command for the demo, one for the tests. Everything installs from constraints.txt (pinned).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export ASSAY_HOME ?= $(CURDIR)/.assay
export DAGSTER_HOME ?= $(ASSAY_HOME)/dagster
export ASSAY_LAKE_ROOT ?= $(ASSAY_HOME)/lake
export ASSAY_WAREHOUSE_PATH ?= $(ASSAY_HOME)/warehouse.duckdb
# LightGBM/OpenMP threads must not busy-wait on a 2-core machine.
export OMP_WAIT_POLICY := PASSIVE
# A single-run backfill of N partitions logs one "planned" event per asset instead of N (Dagster's own switch);
# on SQLite this halves the demo's ingestion time. Cost: a failed run does not mark each planned partition failed.
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install system-packages manifest demo generate run test test-scenarios ui screenshots sql docs bench lint clean

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	# The DuckDB delta extension comes from a pip package; install it once so nothing downloads at run time.
	$(BIN)/python -c "from domain.duckdb_setup import ensure_delta_extension; ensure_delta_extension()"
	touch $@

install: $(BIN)/.installed

# Debian packages the tests run for real: PostgreSQL (the team deployment's instance storage) and Chromium (the UI
# test's browser). Installed once, with apt-get as root or through sudo; without either the tests that need them
# skip and say so.
SYSTEM_PACKAGES := postgresql chromium
system-packages:
	@missing=""; for package in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo -n"; else sudo=none; fi; \
		if [ "$$sudo" = none ]; then echo "make system-packages: not root and no sudo; skipping$$missing" >&2; \
		else $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
			--no-install-recommends$$missing || echo "make system-packages: could not install$$missing" >&2; fi; \
	fi

# dbt's manifest is prepared here, so loading the Dagster definitions never parses dbt.
dbt_project/target/manifest.json: $(BIN)/.installed $(shell find dbt_project/models dbt_project/macros dbt_project/tests -type f 2>/dev/null) dbt_project/dbt_project.yml dbt_project/profiles.yml
	mkdir -p $(ASSAY_HOME)
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --project-dir .

manifest: dbt_project/target/manifest.json

$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME)
	cp orchestration/dagster.yaml $@

generate: install
	$(BIN)/assay generate

run: manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/assay run

# The demo runs one step at a time, so each may use both cores (LightGBM's folds and fits side by side, drift
# reports side by side); a deployment's default is 1, since its daemon runs several runs at once.
demo: export ASSAY_CORES ?= 2
demo: install manifest $(DAGSTER_HOME)/dagster.yaml
	@if [ -n "$${ASSAY_LANDING_DIR:-}" ] && [ -z "$${ASSAY_SOURCE:-}" ]; then \
		echo "make demo: ASSAY_LANDING_DIR is set but ASSAY_SOURCE is not, so the demo would generate synthetic" \
			"files into $$ASSAY_LANDING_DIR. Set ASSAY_SOURCE=files to run on your own files there, or" \
			"ASSAY_SOURCE=synthetic to generate into it on purpose." >&2; \
		exit 1; \
	fi
	@if [ "$${ASSAY_SOURCE:-synthetic}" = "synthetic" ]; then $(BIN)/assay generate; fi
	$(BIN)/assay run

# The suite runs on both cores, a test file per worker at a time: module fixtures (the end-to-end graph, the
# clock's home) are built once, and LightGBM keeps one thread per worker (ASSAY_LGBM_THREADS). The files start in
# tests/conftest.py's order, longest first.
TEST_WORKERS ?= 2
test: install system-packages manifest docs $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --ignore=tests/scenarios

# The two drift scenarios lived week by week through the clock (tests/scenarios): each replay backfills a small
# world, then ticks 16 or 7 weeks on the real schedules, sensors and automation, one replay per worker. About 9
# minutes on this machine, as long as the rest of the suite, so they run as a second command; CI runs both.
test-scenarios: install manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests/scenarios

# The documentation site (MkDocs Material), built strictly: a broken link or an unlisted page is an error.
docs: install
	$(BIN)/mkdocs build --strict --quiet --site-dir $(ASSAY_HOME)/site

# The warehouse in the DuckDB shell, read-only (runs keep writing it), the delta extension loaded for the views.
sql: install
	$(BIN)/duckdb -readonly -cmd "LOAD delta" $(ASSAY_WAREHOUSE_PATH)

# The UI and the daemon on loopback (UI_HOST=0.0.0.0 to serve others); Ctrl-C or SIGTERM stops every process.
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
ui: install manifest $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/assay ui --host $(UI_HOST) --port $(UI_PORT)

# The README's pictures of the UI: the browser test (tests/test_end_to_end.py) saves its screenshots here.
screenshots: install system-packages manifest
	ASSAY_UI_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/python -m pytest -q tests/test_end_to_end.py -k real_browser

bench: install manifest
	$(BIN)/python bench/run.py

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(ASSAY_HOME) dbt_project/target dbt_project/logs .pytest_cache
