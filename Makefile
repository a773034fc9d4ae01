# Two commands: `make run` (the whole system on SQLite, demo data) and `make test` (MariaDB).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
# Debian packages: building mysqlclient; the services and browser the tests drive.
# Tests use DATABASE_URL and TEST_REDIS_URL from the environment when set (see README).
BUILD_PACKAGES := libmariadb-dev pkg-config gcc
TEST_PACKAGES := mariadb-server mariadb-client redis-server chromium

.PHONY: run test lint venv system-packages demo-reset clean chaos

$(BIN)/.installed: requirements.txt requirements-dev.txt
	bash scripts/system_packages.sh $(BUILD_PACKAGES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/python scripts/run_local.py

test: venv
	bash scripts/system_packages.sh $(TEST_PACKAGES)
	bash scripts/ensure_services.sh
	$(BIN)/pytest --create-db -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

demo-reset:
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm /tmp/localstripe.pickle

clean: demo-reset
	rm -rf $(VENV) .test-logs

# The chaos run (README, "Chaos run"): the scaled-out topology under load and faults, then the
# invariant checker and three-way reconciliation. Its own MariaDB and Redis; exits non-zero on
# any violation.
CHAOS_SECONDS ?= 180
chaos: venv
	bash scripts/system_packages.sh mariadb-server mariadb-client redis-server
	CHAOS_SECONDS=$(CHAOS_SECONDS) $(BIN)/python -m chaos
