# Two commands do all the set-up: `make demo` and `make test`.
# Each builds (or refreshes) the virtual environment from this repository alone.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PLUGINS := plugins/temporal plugins/aws_stepfunctions plugins/logicapps
PLUGIN_PROJECTS := $(addsuffix /pyproject.toml,$(PLUGINS))

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

bench: venv
	$(PY) bench/engine.py

clean:
	rm -rf $(VENV) .pytest_cache examples/.turnout
