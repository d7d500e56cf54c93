"""ffeat's benchmarks: asv suites (``bench_*.py``, ``gpu.py``) and the plain scripts
``run.py`` and ``gpu.py``; ``_data`` holds what they share. See docs/measurements.md, "Speed"."""
