"""Benchmarks and load test (not part of the installed project; see bench/README.md)."""
