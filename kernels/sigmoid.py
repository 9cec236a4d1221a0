"""The logistic sigmoid and its backward, one pass each.

    forward    y = 1 / (1 + exp(-x))            computed as e / (1 + e), e = exp(-|x|), for
                                                 x < 0: exp never sees a positive argument, so
                                                 nothing overflows (sigmoid(-1000) = 0, not NaN)
    backward   gx = gy * y * (1 - y)            (the output decides: no input is saved)

NumPy's form of the forward makes four temporaries the size of x (|x|, exp, the two branches
of np.where) and reads and writes each; here each element is read once and written once, in
float64 for the exp and the division, rounded once to x's dtype. Small arrays run on the calling
thread; from PARALLEL_MIN elements, blocks of elements run in parallel, each written by one
thread. The outputs come from the buffer pool (kernels/_pool.py).
"""

import math

from numba import prange

from ._jit import jit
from ._pool import empty

BLOCK = 1 << 14
PARALLEL_MIN = 1 << 16


def sigmoid_fwd(x):
    """x (any shape, contiguous) -> y = sigmoid(x), NaN propagated."""
    y = empty(x.shape, x.dtype)
    xf, yf = x.reshape(-1), y.reshape(-1)
    if xf.size >= PARALLEL_MIN:
        _sigmoid_fwd(xf, yf)
    else:
        _sigmoid_fwd_block(xf, yf, 0, xf.size)
    return y


def sigmoid_bwd(gy, y):
    """gy, y (same shape, contiguous) -> gx = gy * y * (1 - y)."""
    gx = empty(gy.shape, gy.dtype)
    gf, yf, gxf = gy.reshape(-1), y.reshape(-1), gx.reshape(-1)
    if gf.size >= PARALLEL_MIN:
        _sigmoid_bwd(gf, yf, gxf)
    else:
        _sigmoid_bwd_block(gf, yf, gxf, 0, gf.size)
    return gx


@jit()
def _sigmoid_fwd_block(xf, y, lo, hi):
    """y[i] = sigmoid(xf[i]) for i in lo..hi-1."""
    t = y.dtype.type
    for i in range(lo, hi):
        v = float(xf[i])
        e = math.exp(-abs(v))  # in (0, 1]; NaN stays NaN
        y[i] = t(1.0 / (1.0 + e)) if v >= 0.0 else t(e / (1.0 + e))


@jit()
def _sigmoid_bwd_block(gf, yf, gx, lo, hi):
    """gx[i] = gf[i] * yf[i] * (1 - yf[i]) for i in lo..hi-1, in the arrays' dtype."""
    one = yf.dtype.type(1)
    for i in range(lo, hi):
        yi = yf[i]
        gx[i] = gf[i] * yi * (one - yi)


@jit(parallel=True)
def _sigmoid_fwd(xf, y):
    n = xf.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        _sigmoid_fwd_block(xf, y, blk * BLOCK, min(n, (blk + 1) * BLOCK))


@jit(parallel=True)
def _sigmoid_bwd(gf, yf, gx):
    n = gf.size
    for blk in prange((n + BLOCK - 1) // BLOCK):
        _sigmoid_bwd_block(gf, yf, gx, blk * BLOCK, min(n, (blk + 1) * BLOCK))
