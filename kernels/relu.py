"""ReLU and its backward, in one parallel pass each.

    forward    y = x where x > 0, else 0        (NaN stays NaN, as in NumPy and PyTorch)
    backward   gx = gy where y > 0, else 0      (the output decides: no mask is saved)

NumPy needs two single-threaded passes for the forward (``np.maximum`` and the ``x > 0`` mask
the backward needs); here one pass writes y, and the backward reads y itself. Elements are
split into blocks, one thread per block: every output element is written exactly once. The
outputs come from the buffer pool (kernels/_pool.py), the loops write into them.
"""

from numba import prange

from ._jit import jit
from ._pool import empty

BLOCK = 1 << 14  # elements per parallel task: 64 KiB of float32, long runs that vectorise


def relu_fwd(x):
    """x (any shape, contiguous) -> y = max(x, 0) with NaN propagated."""
    y = empty(x.shape, x.dtype)
    _relu_fwd(x.reshape(-1), y.reshape(-1))
    return y


def relu_bwd(gy, y):
    """gy, y (same shape, contiguous) -> gx = gy where y > 0, else 0."""
    gx = empty(gy.shape, gy.dtype)
    _relu_bwd(gy.reshape(-1), y.reshape(-1), gx.reshape(-1))
    return gx


@jit(parallel=True)
def _relu_fwd(xf, y):
    """relu_fwd's loop over flat arrays: y = max(xf, 0)."""
    n = xf.size
    zero = xf.dtype.type(0)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        for i in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            v = xf[i]
            y[i] = v if (v > zero or v != v) else zero


@jit(parallel=True)
def _relu_bwd(gf, yf, gx):
    """relu_bwd's loop over flat arrays: gx = gf where yf > 0."""
    n = gf.size
    zero = gf.dtype.type(0)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        for i in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            gx[i] = gf[i] if yf[i] > zero else zero
