# The two commands a new user needs are `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CODE := ledger projections trainers policies serving api tests bench

.PHONY: install run test lint bench soak clean

# The service needs only the runtime packages; the tests add the dev extras.
$(VENV)/.runtime: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) install -q -e '.[dev]'
	touch $@

install: $(VENV)/.runtime

# `make run PORT=8001` when 8000 is taken (default: LEDGER_PORT, else 8000).
run: install
	$(VENV)/bin/ledger serve --demo $(if $(PORT),--port $(PORT))

test: $(VENV)/.dev
	$(VENV)/bin/lint-imports --config setup.cfg
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy ledger serving policies
	$(VENV)/bin/pytest -q

# py-spy, for the workers' profiles under load (the bench extra).
$(VENV)/.bench: $(VENV)/.dev
	$(PIP) install -q -e '.[dev,bench]'
	touch $@

# About 30 minutes on 2 cores; writes bench/RESULTS.md and RESULTS.json (add --scale for
# 1, 2 and 4 API processes and reads on a standby).
bench: $(VENV)/.bench /usr/bin/wrk
	$(PY) -m bench.run_all --profile

# The HTTP figures are loaded by wrk, a Debian package a new machine lacks.
/usr/bin/wrk:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk

soak: $(VENV)/.dev
	LEDGER_SOAK=1 $(VENV)/bin/pytest -q tests/reliability

clean:
	rm -rf $(VENV) .venv-mlflow var .pytest_cache
