"""GPU twins of ReLU and its backward (same signatures as ``npae.kernels.relu``): one thread per
element.

    forward    y = x where x > 0, else 0        (NaN stays NaN)
    backward   gx = gy where y > 0, else 0
"""

from numba import cuda

from .._arrays import array_module
from ._launch import launch


@cuda.jit
def _relu_fwd_kernel(n_total, x, y):
    zero = x.dtype.type(0)
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        v = x[t]
        y[t] = v if (v > zero or v != v) else zero


@cuda.jit
def _relu_bwd_kernel(n_total, gy, y, gx):
    zero = gy.dtype.type(0)
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        gx[t] = gy[t] if y[t] > zero else zero


def relu_fwd(x):
    """x (any shape, contiguous) -> y = max(x, 0) with NaN propagated."""
    xf = x.reshape(-1)
    y = array_module(x).empty_like(xf)
    launch(_relu_fwd_kernel, xf.size, xf, y)
    return y.reshape(x.shape)


def relu_bwd(gy, y):
    """gy, y (same shape, contiguous) -> gx = gy where y > 0, else 0."""
    gf = gy.reshape(-1)
    gx = array_module(gy).empty_like(gf)
    launch(_relu_bwd_kernel, gf.size, gf, y.reshape(-1), gx)
    return gx.reshape(gy.shape)
