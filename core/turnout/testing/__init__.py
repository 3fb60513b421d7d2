"""Testing helpers for Turnout and its plugins: the conformance suites (work in progress)."""
