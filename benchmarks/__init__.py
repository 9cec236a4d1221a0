"""npae's benchmarks (the full suite arrives with issue 4)."""
