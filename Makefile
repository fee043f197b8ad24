# Titan Enrollment: `make run` starts the whole local stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
ENV := set -a && . infra/local.env && set +a &&

.PHONY: run test bootstrap lint format bench load package clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(ENV) $(PY) -m infra.preflight
	$(ENV) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -e infra/local.env start

test: $(VENV)/.installed
	$(ENV) $(PY) -m infra.preflight
	bash infra/ensure_browser.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m pytest

bootstrap: $(VENV)/.installed
	$(ENV) $(PY) -m infra.bootstrap

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m bench.operations

# Mixed load on a stack of its own, then the invariants; report in bench/results/load.md.
load: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m bench.load --clients 24 --seconds 60

# Deploy templates for AWS (CloudFormation/SAM and Terraform) in build/; see docs/deploying.md.
package: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m infra.package --out build

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
