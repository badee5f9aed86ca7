"""Deterministic generators of small synthetic datasets in the benchmarks' own on-disk formats."""
