"""GPU twins of max pooling (same signatures as ``npae.kernels.max_pool2d``).

One thread per output element scans its window in the CPU kernel's order (i, then j): the
first maximum wins ties, a NaN counts as the maximum (the first NaN), padding is never chosen.
The backward is max_unpool2d's forward, a gather there.
"""

import math

import numpy as np
from numba import cuda

from .._arrays import array_module
from ._launch import launch
from .max_unpool2d import max_unpool2d_fwd


@cuda.jit
def _max_pool_kernel(n_total, x, y, idx, kh, kw, sh, sw, ph, pw, dh, dw):
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        ox = t % ow
        oy = (t // ow) % oh
        ch = (t // (ow * oh)) % c
        b = t // (ow * oh * c)
        best = x.dtype.type(-math.inf)
        where = -1
        for i in range(kh):
            hy = oy * sh - ph + i * dh
            if hy < 0 or hy >= h:
                continue
            for j in range(kw):
                wx = ox * sw - pw + j * dw
                if wx < 0 or wx >= w:
                    continue
                v = x[b, ch, hy, wx]
                if where < 0 or v > best or (math.isnan(v) and not math.isnan(best)):
                    best = v
                    where = hy * w + wx
        y[b, ch, oy, ox] = best
        idx[b, ch, oy, ox] = where


def max_pool2d_fwd(x, geom):
    """x (N, C, H, W) -> (y (N, C, oh, ow), idx int64 (N, C, oh, ow)); geom: the window."""
    xp = array_module(x)
    n, c = x.shape[:2]
    y = xp.empty((n, c, geom.oh, geom.ow), dtype=x.dtype)
    idx = xp.empty((n, c, geom.oh, geom.ow), dtype=np.int64)
    launch(_max_pool_kernel, y.size, x, y, idx, *geom.args)
    return y, idx


def max_pool2d_bwd(gy, idx, h, w):
    """gy, idx (N, C, oh, ow) -> gx (N, C, h, w): each gradient added at its argmax."""
    return max_unpool2d_fwd(gy, idx, h, w)
