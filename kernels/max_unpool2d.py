"""Max unpooling: put each value back at its index, zeros elsewhere; and its backward.

    y[n, c].flat[idx[n, c, i, j]] += x[n, c, i, j]

Duplicate indices (from overlapping pooling windows) are summed, in scan order, so the result is
deterministic; the backward is then the matching gather gx = gy.flat[idx]. Both check every
index against the output plane (one compare per element: Numba does not bounds-check, so a
wrong index would read or write outside the array, or crash the interpreter) and raise
IndexError naming the first offending index and where it is.
"""

import numpy as np
from numba import prange

from ._jit import jit
from ._pool import empty


def max_unpool2d_fwd(x, idx, oh, ow):
    """x, idx (N, C, H, W) -> y (N, C, oh, ow); IndexError for an index outside [0, oh*ow)."""
    y = empty((x.shape[0], x.shape[1], oh, ow), x.dtype)
    bad = _max_unpool2d_fwd(x, idx, y)
    check_indices(idx, bad, oh, ow)
    return y


def max_unpool2d_bwd(gy, idx):
    """gy (N, C, oh, ow), idx (N, C, H, W) -> gx (N, C, H, W) = gy gathered at idx."""
    gx = empty(idx.shape, gy.dtype)
    bad = _max_unpool2d_bwd(gy, idx, gx)
    check_indices(idx, bad, gy.shape[2], gy.shape[3])
    return gx


def check_indices(idx, bad, oh, ow) -> None:
    """``bad`` holds, per (n, c) plane, the flat position in idx of its first index outside
    [0, oh*ow), or -1: raise IndexError for the first such plane."""
    planes = np.flatnonzero(bad >= 0)
    if planes.size == 0:
        return
    n, c, h, w = idx.shape
    plane, pos = int(planes[0]), int(bad[planes[0]])
    raise index_error(idx, (plane // c, plane % c, pos // w, pos % w), oh, ow)


def index_error(idx, where, oh, ow) -> IndexError:
    """The error for the index at ``where`` (n, c, i, j); the GPU twins raise it too."""
    return IndexError(f"max_unpool2d: index {int(idx[where])} at indices{list(where)} is "
                      f"outside the {oh}x{ow} output plane (valid: 0..{oh * ow - 1})")


@jit(parallel=True)
def _max_unpool2d_fwd(x, idx, y4):
    """max_unpool2d_fwd's loop into y4 (N, C, oh, ow); returns each plane's first bad index
    position (or -1)."""
    n, c, h, w = x.shape
    size = y4.shape[2] * y4.shape[3]
    # uninitialised, then each thread zeroes its own planes: a single-threaded np.zeros of the
    # whole output took as long as the scatter itself (measured 2x on 128x16x28x28)
    y = y4.reshape(n, c, size)
    bad = np.full(n * c, -1, dtype=np.int64)
    for plane in prange(n * c):  # each plane scatters only into its own output plane
        b = plane // c
        ch = plane % c
        out = y[b, ch]
        out[:] = 0
        for i in range(h):
            for j in range(w):
                k = idx[b, ch, i, j]
                if 0 <= k < size:
                    out[k] += x[b, ch, i, j]
                elif bad[plane] < 0:
                    bad[plane] = i * w + j
    return bad


@jit(parallel=True)
def _max_unpool2d_bwd(gy, idx, gx):
    """max_unpool2d_bwd's loop into gx (N, C, H, W); returns each plane's first bad index
    position (or -1)."""
    n, c, oh, ow = gy.shape
    h, w = idx.shape[2], idx.shape[3]
    size = oh * ow
    g = np.ascontiguousarray(gy).reshape(n, c, size)  # flat planes: no division per index
    bad = np.full(n * c, -1, dtype=np.int64)
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        src = g[b, ch]
        for i in range(h):
            for j in range(w):
                k = idx[b, ch, i, j]
                if 0 <= k < size:
                    gx[b, ch, i, j] = src[k]
                else:
                    gx[b, ch, i, j] = 0
                    if bad[plane] < 0:
                        bad[plane] = i * w + j
    return bad
