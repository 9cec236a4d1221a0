"""npae's benchmarks: ``npae bench`` (suite.py), the quality protocol (quality.py) and the
compile-time probe (compile_time.py); benchmarks/README.md says how the numbers are taken."""
