# opsdash — the two commands: `make up` and `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV_BIN := .venv/bin
TEST_HOME ?= $(CURDIR)/.local/testrun

.PHONY: help install up down status test test-unit typecheck check bench bench-parts drill lint format sqlfluff

help:
	@echo "make up      install everything, start every service, build the data once"
	@echo "make down    stop every service started by make up"
	@echo "make status  show what runs"
	@echo "make test    same set-up on throwaway data/ports, then run every test tier"
	@echo "make bench   the whole product at S1 and S10 in one table (~30 min, prints figures)"
	@echo "make bench-parts  each part on its own: simulator, ingest, dbt, checks, churn, app ... (hours)"
	@echo "make drill   fault drill on its own stack: faults in, recovery and loss counts out"
	@echo "make test-unit  the unit tier only: no services, under a minute"
	@echo "make check   lint + type check + every test tier"

install:
	@scripts/install.sh

up: install
	@$(VENV_BIN)/opsdash up $(if $(SCALE),--scale $(SCALE)) $(if $(DAYS),--days $(DAYS))

down:
	@[ -x $(VENV_BIN)/opsdash ] && $(VENV_BIN)/opsdash down || true

status: install
	@$(VENV_BIN)/opsdash status

test:
	@scripts/install.sh --test
	@scripts/test.sh "$(TEST_HOME)"

# Unit tests need the dbt manifest (dbt parse, no database) and nothing else.
test-unit: install
	@$(VENV_BIN)/opsdash prepare
	@$(VENV_BIN)/pytest tests/unit -p no:cacheprovider

typecheck: install
	@$(VENV_BIN)/mypy

lint:
	@$(VENV_BIN)/ruff check .
	@$(VENV_BIN)/ruff format --check .
	@scripts/sqlfluff.sh lint

# sqlfluff (dbt templater) over the dbt project; starts a throwaway PostgreSQL to compile against
sqlfluff: install
	@scripts/sqlfluff.sh lint

format:
	@$(VENV_BIN)/ruff format .
	@$(VENV_BIN)/ruff check --fix .

check: install lint typecheck test

bench: install
	@scripts/bench.sh

bench-parts: install
	@scripts/bench.sh parts

# Fault drill (issue 13): its own fresh stack (2,000 customers, 30 days, ports +70), then
# PostgreSQL restart, Redis/MLflow/support-API/SMTP outages and the counts (~25 min after up).
# DRILL_ARGS shortens it, e.g. "--redis-minutes 0.5 --mlflow-minutes 2 --api-minutes 2".
drill: install
	@nice -n 10 $(VENV_BIN)/python -m bench.drill $(DRILL_ARGS)
