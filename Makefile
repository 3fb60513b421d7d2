# Two commands do all the set-up: `make demo` and `make test`.
# Each builds (or refreshes) the virtual environment from this repository alone.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PLUGINS := plugins/temporal plugins/aws_stepfunctions plugins/logicapps
PLUGIN_PROJECTS := $(addsuffix /pyproject.toml,$(PLUGINS))
# The peers (DBOS, Temporal) get a venv of their own, so they never pin Turnout's dependencies.
PEERS_VENV ?= bench/.venv-peers
PEERS_PY := $(PEERS_VENV)/bin/python

.PHONY: venv demo test lint format bench clean

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e '$(p)[test]')
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	cd examples && ../$(PY) demo.py

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Long (several minutes), so never part of `make test`. See docs/benchmarks.md.
bench: venv
	test -x $(PEERS_PY) || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	$(PEERS_PY) -m bench --turnout-python $(PY)

clean:
	rm -rf $(VENV) .pytest_cache examples/.turnout $(PEERS_VENV)
