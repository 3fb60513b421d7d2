"""pytest plugin: gives plugin authors Turnout's conformance fixtures (work in progress)."""
