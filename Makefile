# Wayfarer — the two commands a user needs: `make run` and `make test`.
# Everything installs into .venv with the pinned versions from requirements*.lock.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

# The first interpreter that is Python >= 3.12 (Django 6 needs it). pyenv shims for versions that
# are installed but not selected fail, so every candidate is actually run, not just looked up.
PYTHON ?= $(shell for c in python3.13 python3.12 python3.14 python3 \
	$$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do \
	  $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v $$c || echo $$c; } && break; \
	done)

.PHONY: run test test-fast lint format install install-dev lock migrate seed bench clean help

help:
	@echo "make run    install, migrate, seed the demo tenant, start web + worker + beat on :$(PORT)"
	@echo "make test   run the whole test suite (DATABASE_URL / CELERY_BROKER_URL pick the services;"
	@echo "            PYTEST_WORKERS=0 runs it in one process, PYTEST_ARGS='...' passes pytest options)"
	@echo "make lint   ruff (lint + format check), import contracts, tenancy lint, mypy"

define install_lock
	@test -n "$(PYTHON)" || { echo "Wayfarer needs Python >= 3.12 (Django 6); none was found." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(1)
	@touch $@
endef

$(VENV)/.installed-prod: requirements.lock
	$(call install_lock,requirements.lock)

$(VENV)/.installed-dev: requirements-dev.lock
	$(call install_lock,requirements-dev.lock)

install: $(VENV)/.installed-prod
install-dev: $(VENV)/.installed-dev

# Regenerate the lock files after changing dependencies in pyproject.toml.
lock: install-dev
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
	$(VENV)/bin/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.lock pyproject.toml

migrate: install
	$(PY) manage.py migrate --no-input

seed: migrate
	$(PY) manage.py seed_demo

# The Procfile's processes under a supervisor: one that dies (the worker, say) is restarted and
# the others keep running (ops/supervisor.py); /healthz shows the restarts.
run: seed
	$(PY) manage.py collectstatic --no-input --verbosity 0
	PORT=$(PORT) $(PY) manage.py supervise

# The suite runs in PYTEST_WORKERS pytest-xdist processes: 2 where there are two cores or more,
# else 0 (in pytest's own process). Each worker has its own test database, var dir and Redis
# database (conftest.py); tests that must not overlap share an xdist_group, which `loadgroup`
# keeps on one worker. `make test PYTEST_WORKERS=0` for a debugger or `-x`.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); if [ "$$n" -ge 2 ]; then echo 2; else echo 0; fi)
XDIST = $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadgroup)

test: install-dev
	$(VENV)/bin/pytest $(XDIST) $(PYTEST_ARGS)

# The fast loop: everything but the tests that start real processes.
test-fast: install-dev
	$(VENV)/bin/pytest $(XDIST) -m "not e2e" $(PYTEST_ARGS)

# Style, then the boundaries (docs/architecture.md, "Boundaries the tools hold"), then types.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m lint.tenancy
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev
	@for b in bench/ingest.py bench/segments.py bench/send.py bench/engine.py bench/campaign.py bench/retention.py; do echo "== $$b"; $(PY) $$b || exit 1; done
	@echo "== bench/recs.py --small"; $(PY) bench/recs.py --small || exit 1

clean:
	rm -rf $(VENV) var/static
