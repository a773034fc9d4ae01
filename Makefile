# Two commands: `make run` (the whole system on SQLite, demo data) and `make test` (MariaDB).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
# Debian packages: building mysqlclient; the services and browser the tests drive.
# Tests use DATABASE_URL and TEST_REDIS_URL from the environment when set (see README).
# gettext: msgfmt compiles the message catalogs (locale/*/LC_MESSAGES/django.po → .mo).
BUILD_PACKAGES := libmariadb-dev pkg-config gcc gettext
TEST_PACKAGES := mariadb-server mariadb-client redis-server chromium

# The guest e-mails' translations: the .po files are the source (committed), the .mo are built.
PO_FILES := $(wildcard locale/*/LC_MESSAGES/django.po)
MO_FILES := $(PO_FILES:.po=.mo)
# makemessages looks at the guest e-mails only (templates/emails, reservations).
MESSAGES_IGNORE := $(foreach d,backoffice bench common config deploy docs locale outbox payments scripts suppliers \
                     tests staticfiles templates/drf_spectacular,--ignore='$(d)/*')

.PHONY: run test lint venv messages messages-extract system-packages demo-reset clean chaos bench

$(BIN)/.installed: requirements.txt requirements-dev.txt
	bash scripts/system_packages.sh $(BUILD_PACKAGES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed messages

%.mo: %.po
	bash scripts/system_packages.sh gettext
	msgfmt --check -o $@ $<

messages: $(MO_FILES)

# After changing a translatable string: update the .po files, translate, commit them.
messages-extract: venv
	$(BIN)/python manage.py makemessages -l es --add-location=file --no-obsolete $(MESSAGES_IGNORE)

run: venv
	$(BIN)/python scripts/run_local.py

test: venv
	bash scripts/system_packages.sh $(TEST_PACKAGES)
	bash scripts/ensure_services.sh
	$(BIN)/pytest --create-db -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-logo  # dependencies point one way (pyproject.toml [tool.importlinter])

# Every benchmark and its ceiling in one sitting (README, Performance): wrk, MariaDB, Redis.
bench: venv
	bash scripts/system_packages.sh wrk
	bash scripts/ensure_services.sh
	$(BIN)/python bench/all.py

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
