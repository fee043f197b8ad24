# Titan Enrollment: `make run` starts the whole local stack, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
ENV := set -a && . infra/local.env && set +a &&

.PHONY: run test bootstrap lint format bench load faults package clean

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

# Each benchmark starts what it needs on ports, tables, a Redis database and a RabbitMQ
# virtual host of its own, prints a table and saves it under bench/results/.
BENCH := PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m
bench: $(VENV)/.installed
	$(BENCH) bench.operations
	$(BENCH) bench.conditional_get
	$(BENCH) bench.relay
	$(BENCH) bench.delivery
	$(BENCH) bench.cold_start

# Mixed load on a stack of its own, then the invariants; report in bench/results/load.md.
load: $(VENV)/.installed
	$(BENCH) bench.load --clients 24 --seconds 60

# Broker connections closed, relay and pollers killed, receivers down, slow DynamoDB;
# report in bench/results/faults.md.
faults: $(VENV)/.installed
	$(BENCH) bench.faults --kills 10

# Deploy templates for AWS (CloudFormation/SAM and Terraform) in build/; see README, "Deploying to AWS".
package: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(PY) -m infra.package --out build

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
