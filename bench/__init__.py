"""Benchmarks of Turnout against DBOS and Temporal (``make bench``); see bench/README.md."""
