"""GPU twins of nearest upsampling (same signatures as ``npae.kernels.upsample_nearest2d``).

``rows`` (oh,) and ``cols`` (ow,) name the source row and column of each output row and
column; they arrive as host arrays from the op and are copied to the device here. The forward
is a gather; the backward, a scatter-add on the CPU, becomes a gather: one thread per source
pixel (r, c) sums gy[i, j] over the i with rows[i] == r and the j with cols[j] == c, in
increasing i then j, so the sum is the same on every run.
"""

from numba import cuda

from .._arrays import array_module
from ..upsample_nearest2d import check_sources
from ._launch import launch


@cuda.jit
def _upsample_fwd_kernel(n_total, x, rows, cols, y):
    c, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        j = t % ow
        i = (t // ow) % oh
        ch = (t // (ow * oh)) % c
        b = t // (ow * oh * c)
        y[b, ch, i, j] = x[b, ch, rows[i], cols[j]]


@cuda.jit
def _upsample_bwd_kernel(n_total, gy, rows, cols, gx):
    c, h, w = gx.shape[1], gx.shape[2], gx.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        q = t % w
        r = (t // w) % h
        ch = (t // (w * h)) % c
        b = t // (w * h * c)
        acc = gx.dtype.type(0)
        for i in range(oh):
            if rows[i] != r:
                continue
            for j in range(ow):
                if cols[j] == q:
                    acc += gy[b, ch, i, j]
        gx[b, ch, r, q] = acc


def upsample_nearest2d_fwd(x, rows, cols):
    """x (N, C, H, W) -> y (N, C, len(rows), len(cols))."""
    check_sources(rows, cols, x.shape[2], x.shape[3])
    xp = array_module(x)
    rows, cols = xp.asarray(rows), xp.asarray(cols)
    y = xp.empty((x.shape[0], x.shape[1], rows.shape[0], cols.shape[0]), dtype=x.dtype)
    launch(_upsample_fwd_kernel, y.size, x, rows, cols, y)
    return y


def upsample_nearest2d_bwd(gy, rows, cols, h, w):
    """gy (N, C, oh, ow) -> gx (N, C, h, w)."""
    check_sources(rows, cols, h, w)
    xp = array_module(gy)
    rows, cols = xp.asarray(rows), xp.asarray(cols)
    gx = xp.empty((gy.shape[0], gy.shape[1], h, w), dtype=gy.dtype)
    launch(_upsample_bwd_kernel, gx.size, gy, rows, cols, gx)
    return gx
