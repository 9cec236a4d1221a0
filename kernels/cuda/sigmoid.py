"""GPU twins of the sigmoid and its backward (same signatures as ``npae.kernels.sigmoid``): one
thread per element, the same arithmetic (exp of -|x|, in x's dtype)."""

import math

from numba import cuda

from .._arrays import array_module
from ._launch import launch


@cuda.jit
def _sigmoid_fwd_kernel(n_total, x, y):
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        v = x[t]
        e = math.exp(-abs(v))
        r = one / (one + e)
        y[t] = r if v >= zero else e * r


@cuda.jit
def _sigmoid_bwd_kernel(n_total, gy, y, gx):
    one = y.dtype.type(1)
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        yi = y[t]
        gx[t] = gy[t] * yi * (one - yi)


def sigmoid_fwd(x):
    """x (any shape, contiguous) -> y = sigmoid(x), NaN propagated."""
    xf = x.reshape(-1)
    y = array_module(x).empty_like(xf)
    launch(_sigmoid_fwd_kernel, xf.size, xf, y)
    return y.reshape(x.shape)


def sigmoid_bwd(gy, y):
    """gy, y (same shape, contiguous) -> gx = gy * y * (1 - y)."""
    gf = gy.reshape(-1)
    gx = array_module(gy).empty_like(gf)
    launch(_sigmoid_bwd_kernel, gf.size, gf, y.reshape(-1), gx)
    return gx.reshape(gy.shape)
