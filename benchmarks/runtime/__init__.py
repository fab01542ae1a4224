"""Helpers of the runtime benchmark (``benchmarks/bench_runtime.py``)."""
