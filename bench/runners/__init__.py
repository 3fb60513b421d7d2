"""One runner per system; each runs one workload in its own process and prints one result line."""
