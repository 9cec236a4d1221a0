"""Max pooling that writes the value and its index in one pass, and its backward.

    window of output (oy, ox): rows oy*sh - ph + i*dh, cols ox*sw - pw + j*dw
    idx[n, c, oy, ox] = row * W + col     (flat within the H x W input plane, PyTorch's format)

Ties: the first maximum in window scan order (i, then j) wins, because only a strictly larger
value replaces the current best. A NaN counts as the maximum, so NaN values propagate as in
PyTorch; its index is the first NaN's (PyTorch's CPU kernel keeps the last). Padding is never
chosen. The backward routes each gradient to exactly the saved index: it is max_unpool2d's
forward (a scatter-add into the input plane).
"""

import numpy as np
from numba import prange

from ._jit import jit
from ._pool import empty
from .max_unpool2d import max_unpool2d_fwd


def max_pool2d_fwd(x, geom):
    """x (N, C, H, W) -> (y (N, C, oh, ow), idx int64 (N, C, oh, ow)); geom: the window
    (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, named)."""
    n, c = x.shape[:2]
    y = empty((n, c, geom.oh, geom.ow), x.dtype)
    idx = empty((n, c, geom.oh, geom.ow), np.int64)
    _max_pool2d(x, y, idx, *geom.args, geom.oh, geom.ow)
    return y, idx


@jit(parallel=True)
def _max_pool2d(x, y, idx, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """max_pool2d_fwd's loop, the geometry unpacked (Numba takes integers): fills y and idx."""
    n, c, h, w = x.shape
    if (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0 and dh == 1
            and dw == 1 and 2 * oh <= h and 2 * ow <= w):
        _max_pool2d_2x2(x, y, idx, oh, ow)  # every model of the article pools this way
        return
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        for oy in range(oh):
            for ox in range(ow):
                best = x.dtype.type(-np.inf)
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
                        # a select, not a branch: on real data "is it larger?" is a coin toss
                        # the branch predictor loses (measured 2x on the article's pool)
                        take = (where < 0) | (v > best) | ((v != v) & (best == best))
                        best = v if take else best
                        where = hy * w + wx if take else where
                y[b, ch, oy, ox] = best
                idx[b, ch, oy, ox] = where


def max_pool2d_bwd(gy, idx, h, w):
    """gy, idx (N, C, oh, ow) -> gx (N, C, h, w): each gradient added at its argmax."""
    return max_unpool2d_fwd(gy, idx, h, w)


@jit(inline=True)
def _first_max(a, b):
    """a, unless b is larger, or b is NaN and a is not: the first maximum, NaN the largest."""
    return b if (b > a) | ((b != b) & (a == a)) else a


@jit(parallel=True)
def _max_pool2d_2x2(x, y, idx, oh, ow):
    """_max_pool2d for 2x2 windows, stride 2, no padding, every window inside the image:
    the four taps unrolled, no bounds checks. Same rule for ties and NaN, in the same scan
    order:

        rows 2*oy, 2*oy + 1, columns 2*ox, 2*ox + 1:   a b     scanned a, b, c, d
                                                        c d

    The maximum first (first_max folded over a, b, c, d), then where it is: the first tap,
    in scan order, equal to it (or NaN when it is NaN). Both are selects, not branches, and
    the tap number goes through a small int32 row before the int64 index is written: with the
    int64 select in the same loop as the float32 compares LLVM did not vectorise it (1.7 ->
    0.63 ms on 128x16x28x28, same results).
    """
    n, c, h, w = x.shape
    w0, w1, ww, ww1 = np.int32(0), np.int32(1), np.int32(w), np.int32(w + 1)
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        taps = np.empty(ow, np.int32)  # which of a, b, c, d: 0, 1, w, w + 1
        for oy in range(oh):
            top = x[b, ch, 2 * oy]
            bottom = x[b, ch, 2 * oy + 1]
            yrow = y[b, ch, oy]
            irow = idx[b, ch, oy]
            for ox in range(ow):
                j = 2 * ox
                best = _first_max(_first_max(_first_max(top[j], top[j + 1]), bottom[j]),
                                  bottom[j + 1])
                yrow[ox] = best
                nan = best != best
                tap = ww1
                v = bottom[j]
                tap = ww if (v == best) | (nan & (v != v)) else tap
                v = top[j + 1]
                tap = w1 if (v == best) | (nan & (v != v)) else tap
                v = top[j]
                tap = w0 if (v == best) | (nan & (v != v)) else tap
                taps[ox] = tap
            base = 2 * oy * w
            for ox in range(ow):
                irow[ox] = base + 2 * ox + taps[ox]
