"""Direct-loop convolution for few channels, where im2col + GEMM loses.

im2col copies every input pixel kh*kw times before the GEMM. When the GEMM has few rows
(few output channels, e.g. the final 32->1 convolution of a decoder) that copy costs far more
than the arithmetic, so these kernels loop over the definition instead:

    y[n, o, oy, ox] = sum_{c, i, j} w[o, c, i, j] * x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

For tap column j, the output columns whose input column is inside the image form one
contiguous range [lo, hi) (``valid_range``), so the innermost loop has no branch and
vectorises. Parallel loops run over planes that own their outputs: (n, o) for the forward,
(n, c) for the input gradient (its scatter stays inside its own plane), (o, c) for the weight
gradient.
"""

import numpy as np
from numba import prange

from ._jit import jit
from ._windows import valid_range


@jit(parallel=True)
def conv2d_direct_fwd(x, w, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W), w (O, C, kh, kw) -> y (N, O, oh, ow), no bias."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    y = np.empty((n, o, oh, ow), dtype=x.dtype)  # each thread zeroes its own planes
    for plane in prange(n * o):
        b = plane // o
        oc = plane % o
        y[b, oc] = 0
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    wv = w[oc, ch, i, j]
                    lo, hi = valid_range(j, sw, pw, dw, wd, ow)
                    off = j * dw - pw
                    for oy in range(oh):
                        hy = oy * sh - ph + i * dh
                        if hy < 0 or hy >= h:
                            continue
                        for ox in range(lo, hi):
                            y[b, oc, oy, ox] += wv * x[b, ch, hy, ox * sw + off]
    return y


@jit(parallel=True)
def conv2d_direct_bwd_input(gy, w, h, wd, sh, sw, ph, pw, dh, dw):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd): every output gradient sent
    back through each tap to the input pixel it read."""
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    gx = np.empty((n, c, h, wd), dtype=gy.dtype)  # each thread zeroes its own planes
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        gx[b, ch] = 0
        for oc in range(o):
            for i in range(kh):
                for j in range(kw):
                    wv = w[oc, ch, i, j]
                    lo, hi = valid_range(j, sw, pw, dw, wd, ow)
                    off = j * dw - pw
                    for oy in range(oh):
                        hy = oy * sh - ph + i * dh
                        if hy < 0 or hy >= h:
                            continue
                        for ox in range(lo, hi):
                            gx[b, ch, hy, ox * sw + off] += wv * gy[b, oc, oy, ox]
    return gx


@jit(parallel=True)
def conv2d_direct_bwd_weight(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw)."""
    n, c, h, wd = x.shape
    _, o, oh, ow = gy.shape
    gw = np.zeros((o, c, kh, kw), dtype=x.dtype)
    for pair in prange(o * c):
        oc = pair // c
        ch = pair % c
        for i in range(kh):
            for j in range(kw):
                lo, hi = valid_range(j, sw, pw, dw, wd, ow)
                off = j * dw - pw
                total = 0.0  # float64 across images: long sums keep their precision
                for b in range(n):
                    acc = x.dtype.type(0)
                    for oy in range(oh):
                        hy = oy * sh - ph + i * dh
                        if hy < 0 or hy >= h:
                            continue
                        for ox in range(lo, hi):
                            acc += gy[b, oc, oy, ox] * x[b, ch, hy, ox * sw + off]
                    total += acc
                gw[oc, ch, i, j] = total
    return gw
