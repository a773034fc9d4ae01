# Two commands: `make run` (the whole system on SQLite, demo data) and `make test` (MariaDB).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: run test lint venv demo-reset clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

run: venv
	$(BIN)/python scripts/run_local.py

test: venv
	bash scripts/ensure_services.sh
	$(BIN)/pytest --create-db -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

demo-reset:
	rm -f db.sqlite3 db.sqlite3-wal db.sqlite3-shm /tmp/localstripe.pickle

clean: demo-reset
	rm -rf $(VENV) .test-logs
