# fedele — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_SETTINGS_MODULE ?= config.settings.embedded

.PHONY: run run-prod test venv venv-dev assets chromium migrate demo lint typecheck importlint check migrations-check \
        pytest pytest-postgres bench messages translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

venv: $(BIN)/python ## runtime dependencies, exactly as locked
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/base.lock

venv-dev: $(BIN)/python ## runtime + development dependencies, exactly as locked
	$(UV) pip sync --quiet --python $(BIN)/python requirements/dev.lock

assets: ## front-end libraries from npm into static/vendor (never committed)
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent vendor

chromium: ## Debian's Chromium for the browser tests, Dovecot as the real IMAP server of the e-mail tests, sipp as the SIP peer
	@{ command -v chromium >/dev/null 2>&1 && test -x /usr/sbin/dovecot && command -v sipp >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dovecot-imapd sip-tester; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium dovecot-imapd sip-tester; fi; }

migrate:
	$(BIN)/python manage.py migrate --noinput -v0

demo: ## demo data, once (a marker in the database prevents a second load)
	$(BIN)/python manage.py demo --if-empty

run: venv assets migrate demo ## embedded mode: SQLite under var/, eager jobs, one ASGI process
	$(MAKE) --no-print-directory translations
	@echo ""
	@echo "  fedele is starting on http://$(HOST):$(PORT)/"
	@$(BIN)/python manage.py demo --print-logins
	@echo ""
	$(BIN)/python manage.py scheduler & SCHED=$$!; trap "kill $$SCHED 2>/dev/null" EXIT INT TERM; \
	  $(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --lifespan off

run-prod: venv assets ## production: needs DATABASE_URL (PostgreSQL), REDIS_URL, DJANGO_SECRET_KEY; see docs/ops.md
	DJANGO_SETTINGS_MODULE=config.settings.production $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=config.settings.production $(BIN)/python manage.py collectstatic --noinput -v0
	$(MAKE) --no-print-directory translations
	DJANGO_SETTINGS_MODULE=config.settings.production bash -c '\
	  $(BIN)/celery -A config worker --loglevel=INFO --concurrency=$${CELERY_CONCURRENCY:-2} & W=$$!; \
	  $(BIN)/celery -A config beat --loglevel=INFO --schedule var/celerybeat-schedule & B=$$!; \
	  trap "kill $$W $$B 2>/dev/null" EXIT INT TERM; \
	  $(BIN)/uvicorn config.asgi:application --host $${HOST:-0.0.0.0} --port $${PORT:-8000} --workers $${WEB_WORKERS:-2} --lifespan off --proxy-headers'

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/mypy fedele config tests $$(test -d bench && echo bench)

importlint:
	$(BIN)/lint-imports

check:
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py check --fail-level WARNING

migrations-check:
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

translations: ## compile locale/*.po to .mo with Babel (pure Python: no gettext binaries needed)
	@if [ -d locale ]; then $(BIN)/pybabel -q compile -d locale -D django; fi

messages: ## refresh the Italian catalogue (needs gettext's xgettext)
	$(BIN)/python manage.py makemessages -l it --ignore=.venv --ignore=node_modules --ignore=var
	$(BIN)/python manage.py makemessages -d djangojs -l it --ignore=.venv --ignore=node_modules --ignore=static/vendor || true

pytest:
	$(MAKE) --no-print-directory translations
	FEDELE_REQUIRE_TOOLS=$${FEDELE_REQUIRE_TOOLS:-$${CI:+1}} DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest -n 2 --cov --cov-report=term:skip-covered -q

pytest-postgres:
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  echo "PostgreSQL reachable: running the suite on PostgreSQL"; \
	  FEDELE_REQUIRE_TOOLS=$${FEDELE_REQUIRE_TOOLS:-$${CI:+1}} DATABASE_URL=$(PG_URL) DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/pytest -n 2 -q -m "not browser"; \
	else echo "PostgreSQL not reachable on $(PG_URL): PostgreSQL run skipped"; fi

test: venv-dev assets chromium lint typecheck importlint check migrations-check pytest pytest-postgres ## everything CI runs

bench: venv-dev
	$(BIN)/python bench/run.py customers_api

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles var
