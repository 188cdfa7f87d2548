"""Benchmarks for BatchNorm Lab: ``python -m bench`` (see bench/__main__.py)."""
