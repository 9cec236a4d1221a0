"""Nearest-neighbour upsampling and its backward.

The caller computes, once, which source row and column feed each output row and column
(``rows`` (oh,), ``cols`` (ow,): PyTorch's rule, see npae.engine.shapes). Then

    forward    y[n, c, i, j] = x[n, c, rows[i], cols[j]]
    backward   gx[n, c, rows[i], cols[j]] += gy[n, c, i, j]   (a source pixel sums its copies)

Both run in parallel over (n, c) planes; the backward scatters only within its own plane.
``rows`` and ``cols`` are checked against the input first (IndexError otherwise): the loops do
not bounds-check, and these kernels are public.
"""

from numba import prange

from ._jit import jit
from ._pool import empty


def upsample_nearest2d_fwd(x, rows, cols):
    """x (N, C, H, W) -> y (N, C, len(rows), len(cols))."""
    check_sources(rows, cols, x.shape[2], x.shape[3])
    y = empty((x.shape[0], x.shape[1], len(rows), len(cols)), x.dtype)
    _upsample_nearest2d_fwd(x, rows, cols, y)
    return y


def upsample_nearest2d_bwd(gy, rows, cols, h, w):
    """gy (N, C, oh, ow) -> gx (N, C, h, w)."""
    check_sources(rows, cols, h, w)
    gx = empty((gy.shape[0], gy.shape[1], h, w), gy.dtype)
    _upsample_nearest2d_bwd(gy, rows, cols, gx)
    return gx


def check_sources(rows, cols, h, w) -> None:
    """IndexError unless every source row lies in [0, h) and every column in [0, w) (the GPU
    twins call it too; rows and cols are short, one per output row or column)."""
    for name, src, n in (("rows", rows, h), ("cols", cols, w)):
        if len(src) and not (0 <= int(src.min()) and int(src.max()) < n):
            bad = [int(v) for v in src.tolist() if not 0 <= int(v) < n][0]
            raise IndexError(f"upsample_nearest2d: {name} holds source {bad}, outside the "
                             f"input's {n} (valid: 0..{n - 1})")


@jit(parallel=True)
def _upsample_nearest2d_fwd(x, rows, cols, y):
    """upsample_nearest2d_fwd's loop, into y (N, C, len(rows), len(cols))."""
    n, c, h, w = x.shape
    oh = rows.shape[0]
    ow = cols.shape[0]
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        for i in range(oh):
            r = rows[i]
            for j in range(ow):
                y[b, ch, i, j] = x[b, ch, r, cols[j]]


@jit(parallel=True)
def _upsample_nearest2d_bwd(gy, rows, cols, gx):
    """upsample_nearest2d_bwd's loop, into gx (N, C, h, w): each thread zeroes its planes."""
    n, c, oh, ow = gy.shape
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        gx[b, ch] = 0
        for i in range(oh):
            r = rows[i]
            for j in range(ow):
                gx[b, ch, r, cols[j]] += gy[b, ch, i, j]
