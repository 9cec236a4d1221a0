"""Timing in one process, for what may share one: npae against its own NumPy formulation, the
roofline and scaling probes (npae_only.py), and for now the GPU suite (gpu.py). npae against
PyTorch on the CPU never shares a process (harness.py says why).

Implementations of one case are timed in turn, call by call (every repetition runs each once),
so drifting clocks and other load hit all of them alike; a summary gives the median with the
interquartile range beside it, never a single number.
"""

import time

import numpy as np


def interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Seconds per call for each named callable: {name: [t, ...]}, calls interleaved."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def summary(samples) -> dict:
    """Median, interquartile range and minimum of ``samples`` (seconds), and how many."""
    a = np.asarray(samples)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_s": float(med), "iqr_s": float(q3 - q1), "min_s": float(a.min()),
            "runs": len(a)}
