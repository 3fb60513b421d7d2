"""Declarative workflows: CNCF Serverless Workflow definitions run as Turnout workflows.

A definition (YAML or JSON) is loaded and validated by :func:`load_definition`
and registered by :func:`register` as a workflow function that interprets it,
so it runs on any engine that runs Turnout workflow code. Every external
effect is a Turnout activity. See docs/declarative.md.
"""

from ._api import load_definition, parse_definition, register
from ._definition import Definition, DefinitionError, Settings
from ._starts import (
    SCHEDULER_SUFFIX,
    ClientStarter,
    Starter,
    scheduler_id,
    start_schedule,
    starts_instances,
)

__all__ = [
    "SCHEDULER_SUFFIX",
    "ClientStarter",
    "Definition",
    "DefinitionError",
    "Settings",
    "Starter",
    "load_definition",
    "parse_definition",
    "register",
    "scheduler_id",
    "start_schedule",
    "starts_instances",
]
