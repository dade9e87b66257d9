"""Benchmarks: one module per figure, run through bench/run.py."""
