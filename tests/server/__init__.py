"""Tests of the HTTP server, its CLI client and their docs."""
