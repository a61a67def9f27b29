# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# The locks are resolved for the oldest supported Python; the image and CI install them as they are.
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" --quiet $(LOCK_FLAGS)

.PHONY: install demo test test-lowest lint format lock redis browser clean

install: $(VENV)/.installed

# Exact versions with their hashes (requirements-dev.lock: runtime + test + lint tools), then the
# project itself without resolving anything again.
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements-dev.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# The demo on the embedded default: SQLite, seeded data, a fake Clerk on loopback, a feed to fetch.
demo: install
	PY=$(PY) ./scripts/demo

# The whole suite, on SQLite by default or on the database DATABASE_URL names. Needs Redis on
# 127.0.0.1:6379 (started here when redis-server is installed and nothing answers).
test: install redis browser
	$(VENV)/bin/pytest -n auto

# The same suite with the lowest version of every direct dependency that pyproject.toml allows
# (a separate venv, .venv-lowest): the floors are true.
test-lowest: install redis browser
	./scripts/test-lowest

# Findings fail (CI runs this): ruff, and the apps' layering (import-linter, pyproject.toml).
# `make format` fixes what can be fixed and formats the tree.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Re-lock after changing a dependency in pyproject.toml: pins already in the locks are kept where
# they still fit. `make lock LOCK_FLAGS=--upgrade` moves everything to the newest allowed versions.
lock: install
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock

redis:
	@./scripts/ensure-redis

# Headless Chromium for the admin's browser test (Debian's chromium and chromium-driver).
browser:
	@./scripts/ensure-chromium

clean:
	rm -rf $(VENV) .venv-lowest db.sqlite3 db.sqlite3-* staticfiles .demo
