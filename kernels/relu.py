"""ReLU and its backward, in one parallel pass each.

    forward    y = x where x > 0, else 0        (NaN stays NaN, as in NumPy and PyTorch)
    backward   gx = gy where y > 0, else 0      (the output decides: no mask is saved)

NumPy needs two single-threaded passes for the forward (``np.maximum`` and the ``x > 0`` mask
the backward needs); here one pass writes y, and the backward reads y itself. Elements are
split into blocks, one thread per block: every output element is written exactly once.
"""

import numpy as np
from numba import prange

from ._jit import jit

BLOCK = 1 << 14  # elements per parallel task: 64 KiB of float32, long runs that vectorise


@jit(parallel=True)
def relu_fwd(x):
    """x (any shape, contiguous) -> y = max(x, 0) with NaN propagated."""
    xf = x.reshape(-1)
    y = np.empty_like(xf)
    n = xf.size
    zero = x.dtype.type(0)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        for i in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            v = xf[i]
            y[i] = v if (v > zero or v != v) else zero
    return y.reshape(x.shape)


@jit(parallel=True)
def relu_bwd(gy, y):
    """gy, y (same shape, contiguous) -> gx = gy where y > 0, else 0."""
    gf = gy.reshape(-1)
    yf = y.reshape(-1)
    gx = np.empty_like(gf)
    n = gf.size
    zero = gy.dtype.type(0)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        for i in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            gx[i] = gf[i] if yf[i] > zero else zero
    return gx.reshape(gy.shape)
