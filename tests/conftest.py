"""Test-wide settings: only this repository's plugins load, whatever else is installed."""

from __future__ import annotations

import os

# Stray plugins installed in the environment must never change what the tests see
# (datasette's habit); the entry-point names are those in this repository's pyproject files.
os.environ["TURNOUT_PLUGINS"] = "builtin,secretstores,temporal,aws_stepfunctions,logicapps"
