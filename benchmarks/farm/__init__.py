"""The simulated GPU farm of `benchmarks/farm_bench.py` (see spec.py)."""
