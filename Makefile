# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install demo test browser clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# The demo on the embedded default: SQLite, seeded data, a fake Clerk on loopback, a feed to fetch.
demo: install
	PY=$(PY) ./scripts/demo

# The whole suite, on SQLite by default or on the database DATABASE_URL names.
test: install browser
	$(VENV)/bin/pytest -n auto

# Headless Chromium for the admin's browser test (Debian's chromium and chromium-driver).
browser:
	@./scripts/ensure-chromium

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* staticfiles .demo
