# Two commands do all the set-up on a fresh Debian machine, and are quick when already set up:
#   make certify   set up, then certify the reference suite (reports/compat.{json,md,html})
#   make test      set up, lint and type-check, then pytest (unit tests + certification in headless Chromium)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
NODE_STAMP := js_runner/node_modules/.installed
PY_STAMP   := $(VENV)/.installed
# pytest in one worker per core (pytest-xdist; an idle worker steals queued tests from a busy one, so a run of
# long app tests does not leave the other worker idle at the end); `make test ARGS="-n 0"` runs in one process.
PYTEST_ARGS ?= -n auto --dist worksteal

.PHONY: setup certify test unit lint clean-cache bench

setup: $(PY_STAMP) $(NODE_STAMP)
	@$(PY) -m js_runner.browser ensure

$(PY_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[harness,test]'
	@touch $@

$(NODE_STAMP): js_runner/package.json js_runner/package-lock.json
	cd js_runner && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# One worker per core: tfjs-certify certify -j defaults to the cores this process may use.
certify: setup
	$(PY) -m harness certify $(ARGS)

# Lint and type check first: they fail in seconds, the browser tests take minutes.
lint: $(PY_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS) $(ARGS)

unit: setup lint
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS) $(ARGS)

bench: setup
	$(PY) benchmarks/convert_speed.py
	$(PY) benchmarks/throughput.py

clean-cache:
	rm -rf .cache reports/artifacts
