"""Nearest-neighbour upsampling and its backward.

The caller computes, once, which source row and column feed each output row and column
(``rows`` (oh,), ``cols`` (ow,): PyTorch's rule, see npae.engine.shapes). Then

    forward    y[n, c, i, j] = x[n, c, rows[i], cols[j]]
    backward   gx[n, c, rows[i], cols[j]] += gy[n, c, i, j]   (a source pixel sums its copies)

Both run in parallel over (n, c) planes; the backward scatters only within its own plane.
``rows`` and ``cols`` are checked against the input first (IndexError otherwise): the loops do
not bounds-check, and these kernels are public.
"""

import numpy as np
from numba import prange

from ._jit import jit


def upsample_nearest2d_fwd(x, rows, cols):
    """x (N, C, H, W) -> y (N, C, len(rows), len(cols))."""
    check_sources(rows, cols, x.shape[2], x.shape[3])
    return _upsample_nearest2d_fwd(x, rows, cols)


def upsample_nearest2d_bwd(gy, rows, cols, h, w):
    """gy (N, C, oh, ow) -> gx (N, C, h, w)."""
    check_sources(rows, cols, h, w)
    return _upsample_nearest2d_bwd(gy, rows, cols, h, w)


def check_sources(rows, cols, h, w) -> None:
    """IndexError unless every source row lies in [0, h) and every column in [0, w) (the GPU
    twins call it too; rows and cols are short, one per output row or column)."""
    for name, src, n in (("rows", rows, h), ("cols", cols, w)):
        if len(src) and not (0 <= int(src.min()) and int(src.max()) < n):
            bad = [int(v) for v in src.tolist() if not 0 <= int(v) < n][0]
            raise IndexError(f"upsample_nearest2d: {name} holds source {bad}, outside the "
                             f"input's {n} (valid: 0..{n - 1})")


@jit(parallel=True)
def _upsample_nearest2d_fwd(x, rows, cols):
    n, c, h, w = x.shape
    oh = rows.shape[0]
    ow = cols.shape[0]
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        for i in range(oh):
            r = rows[i]
            for j in range(ow):
                y[b, ch, i, j] = x[b, ch, r, cols[j]]
    return y


@jit(parallel=True)
def _upsample_nearest2d_bwd(gy, rows, cols, h, w):
    n, c, oh, ow = gy.shape
    gx = np.empty((n, c, h, w), dtype=gy.dtype)  # each thread zeroes its own planes
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        gx[b, ch] = 0
        for i in range(oh):
            r = rows[i]
            for j in range(ow):
                gx[b, ch, r, cols[j]] += gy[b, ch, i, j]
    return gx
