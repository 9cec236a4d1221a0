"""Convolution one image at a time, its columns kept in cache: the path for few channels.

conv2d.py's batched im2col writes the columns of many images (C*kh*kw values per output pixel)
to memory and hands them to BLAS. With few output channels the GEMM is short and cheap, and
that round trip through memory is most of the cost. Here each thread takes whole images: it
builds one image's columns in a buffer that stays in cache, and does the small matrix products
with plain loops whose innermost loop runs along a contiguous row, so it vectorises.

    cols  (K, L)  one image's im2col, K = C*kh*kw taps, L = oh*ow output pixels
    forward        y[n] (O, L)  = W (O, K) @ cols             4 output rows share each cols row
    grad input     for each tap k: row = W[:, k] @ gy[n]  (L,)  then col2im of that one row
    grad weight    gW[o, k]    += dot(gy[n, o], cols[k])      a sum along contiguous rows

Every output is written by one thread, and each sum runs in a fixed order, so results are the
same on every run. The weight gradient sums over images: images are split into a fixed number
of groups (independent of the thread count), each group sums its images in order, then the
groups are added in order.
"""

import numpy as np
from numba import prange

from ._jit import jit

# images per weight-gradient group: 128 images -> 16 partial sums, enough to keep 2-16 threads
# busy; a fixed number so the summation order never depends on the machine
WEIGHT_GROUP = 8


@jit()
def _columns(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols (C*kh*kw, oh*ow) <- the windows of one image x (C, H, W); 0 where padding."""
    # (a branch-free interior, splitting each row at the padding, measured 1.2-1.8x slower)
    c, h, w = x.shape
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                r = cols[(ch * kh + i) * kw + j]
                for oy in range(oh):
                    hy = oy * sh - ph + i * dh
                    base = oy * ow
                    if hy < 0 or hy >= h:
                        for ox in range(ow):
                            r[base + ox] = 0
                        continue
                    xr = x[ch, hy]
                    for ox in range(ow):
                        wx = ox * sw - pw + j * dw
                        r[base + ox] = xr[wx] if 0 <= wx < w else 0


@jit()
def _add_row(row, gx, tap, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """gx (C, H, W) += one column row (the gradient of tap (c, i, j) at every output pixel)."""
    c, h, w = gx.shape
    ch = tap // (kh * kw)
    i = (tap // kw) % kh
    j = tap % kw
    for oy in range(oh):
        hy = oy * sh - ph + i * dh
        if hy < 0 or hy >= h:
            continue
        base = oy * ow
        gr = gx[ch, hy]
        for ox in range(ow):
            wx = ox * sw - pw + j * dw
            if 0 <= wx < w:
                gr[wx] += row[base + ox]


@jit(parallel=True)
def conv2d_image_fwd(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, oh, ow). Pass zeros for no bias."""
    n = x.shape[0]
    o, c, kh, kw = w.shape
    k = c * kh * kw
    L = oh * ow
    w2 = w.reshape(o, k)
    y = np.empty((n, o, L), dtype=x.dtype)
    for img in prange(n):  # each image's output belongs to one thread
        cols = np.empty((k, L), dtype=x.dtype)
        _columns(x[img], cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        yi = y[img]
        for oc in range(o):
            for p in range(L):
                yi[oc, p] = b[oc]
        # four output rows at a time: each cols row is read once for four multiply-adds
        oc = 0
        while oc + 4 <= o:
            y0 = yi[oc]
            y1 = yi[oc + 1]
            y2 = yi[oc + 2]
            y3 = yi[oc + 3]
            for t in range(k):
                w0 = w2[oc, t]
                w1 = w2[oc + 1, t]
                w2_ = w2[oc + 2, t]
                w3 = w2[oc + 3, t]
                r = cols[t]
                for p in range(L):
                    v = r[p]
                    y0[p] += w0 * v
                    y1[p] += w1 * v
                    y2[p] += w2_ * v
                    y3[p] += w3 * v
            oc += 4
        while oc < o:
            yr = yi[oc]
            for t in range(k):
                wv = w2[oc, t]
                r = cols[t]
                for p in range(L):
                    yr[p] += wv * r[p]
            oc += 1
    return y.reshape(n, o, oh, ow)


@jit(parallel=True)
def conv2d_image_bwd_input(gy, w, h, wd, sh, sw, ph, pw, dh, dw):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd): the adjoint of conv2d in x."""
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    k = c * kh * kw
    L = oh * ow
    w2 = w.reshape(o, k)
    g = gy.reshape(n, o, L)
    gx = np.empty((n, c, h, wd), dtype=gy.dtype)
    for img in prange(n):  # each image's gradient belongs to one thread
        gxi = gx[img]
        gxi[:] = 0
        gi = g[img]
        row = np.empty(L, dtype=gy.dtype)
        for t in range(k):
            # row = W[:, t] @ gy[img]: tap t's share of every output pixel's gradient
            for p in range(L):
                row[p] = 0
            for oc in range(o):
                wv = w2[oc, t]
                gr = gi[oc]
                for p in range(L):
                    row[p] += wv * gr[p]
            _add_row(row, gxi, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return gx


@jit(parallel=True, reassociate=True)
def conv2d_image_bwd_weight(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw)."""
    n, c = x.shape[:2]
    o, oh, ow = gy.shape[1:]
    k = c * kh * kw
    L = oh * ow
    g = gy.reshape(n, o, L)
    groups = (n + WEIGHT_GROUP - 1) // WEIGHT_GROUP
    partial = np.zeros((groups, o, k))  # float64: sums over many images keep their precision
    for grp in prange(groups):  # each group owns its partial sum
        cols = np.empty((k, L), dtype=x.dtype)
        acc = partial[grp]
        for img in range(grp * WEIGHT_GROUP, min(n, (grp + 1) * WEIGHT_GROUP)):
            _columns(x[img], cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
            gi = g[img]
            for oc in range(o):
                gr = gi[oc]
                for t in range(k):
                    # dot(gy row, cols row); `reassociate` lets the compiler split this sum
                    # into vector lanes, in an order fixed at compile time
                    r = cols[t]
                    s = x.dtype.type(0)
                    for p in range(L):
                        s += gr[p] * r[p]
                    acc[oc, t] += s
    gw = np.zeros((o, k))
    for grp in range(groups):  # groups added in order: the same sum on every run
        gw += partial[grp]
    return gw.astype(x.dtype).reshape(o, c, kh, kw)
