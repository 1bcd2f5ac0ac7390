"""Benchmarks of the MovieLens pipeline against published protocols.

Benchmarks are scripts, not tests: they measure and report. The math they rely
on (splits, metrics, baselines) is unit-tested under `tests/benchmarks/`.
"""
