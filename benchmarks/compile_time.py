"""How long the Numba kernels take to compile (cold cache) and to load (warm cache).

    python -m benchmarks.compile_time

Runs a fresh interpreter twice with an empty, private NUMBA_CACHE_DIR: the first run compiles
every kernel for float32 and float64 and writes the cache, the second loads it. Each run reports
the import time and the time of a first call through every kernel.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

PROBE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
import npae, npae.functional as F
t_import = time.perf_counter() - t0
t1 = time.perf_counter()
for dtype in (np.float32, np.float64):
    x = npae.Tensor(np.random.rand(2, 3, 8, 8).astype(dtype), requires_grad=True)
    w = npae.Tensor(np.random.rand(4, 3, 3, 3).astype(dtype), requires_grad=True)
    wt = npae.Tensor(np.random.rand(3, 2, 3, 3).astype(dtype), requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    p, idx = F.max_pool2d(x, 2, return_indices=True)
    u = F.max_unpool2d(p, idx, 2)
    up = F.upsample_nearest2d(p, scale_factor=2)
    t = F.conv_transpose2d(x, wt, stride=2)
    # a long window (C*kh*kw >= 64) and one output channel: the one-image kernels, in all three
    # directions; ReLU has kernels of its own
    x8 = npae.Tensor(np.random.rand(2, 8, 8, 8).astype(dtype), requires_grad=True)
    w1 = npae.Tensor(np.random.rand(1, 8, 3, 3).astype(dtype), requires_grad=True)
    d = F.relu(F.conv2d(x8, w1, padding=1))
    (y.sum() + u.sum() + up.sum() + t.sum() + d.sum()).backward()
t_first = time.perf_counter() - t1
print(json.dumps({"import_s": t_import, "first_calls_s": t_first}))
"""


def run_once(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def main():
    with tempfile.TemporaryDirectory() as cache_dir:
        print("cold cache (compiling every kernel for float32 and float64)...", flush=True)
        cold = run_once(cache_dir)
        print("warm cache (loading the compiled kernels)...", flush=True)
        warm = run_once(cache_dir)
    print(f"{'':12}{'import':>10}{'first calls':>14}{'whole process':>16}")
    for name, r in (("cold cache", cold), ("warm cache", warm)):
        print(f"{name:12}{r['import_s']:>9.2f}s{r['first_calls_s']:>13.2f}s"
              f"{r['process_s']:>15.2f}s")


if __name__ == "__main__":
    main()
