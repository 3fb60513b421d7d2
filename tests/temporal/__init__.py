"""Tests of the Temporal adapter (plugins/temporal) against a real Temporal dev server."""
