"""The ``turnout`` command line (work in progress)."""

import click


@click.group()
def main() -> None:
    """Turnout: one management API for any workflow engine."""
