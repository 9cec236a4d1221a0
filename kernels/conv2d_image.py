"""Convolution one image per thread, its taps kept in cache: the path for few output channels
over long windows (``conv2d_plan`` in conv2d.py says exactly when).

conv2d.py's batched im2col writes the columns of many images (C*kh*kw values per output pixel)
to memory and hands them to BLAS. With few output channels the GEMM is short and cheap, and
that round trip through memory is most of the cost. Here each thread takes whole images and
does the small matrix products with plain loops whose innermost loop runs along one
contiguous "run" of values per tap (see ``_layout``), so it vectorises:

- stride 1: a tap's run is a shifted slice of the zero-padded image itself: no copy per tap;
- other strides: the runs are the rows of the image's im2col columns, built in a buffer that
  stays in cache.

    run(t)  tap t = (c, i, j) at every output pixel, m values
    forward        y[n] (O, m)  = W (O, K) @ runs        4 output rows share each run
    grad input     run(t) += W[:, t] @ gy[n]             added back where the tap read
    grad weight    gW[o, t]    += dot(gy[n, o], run(t))  a sum along a contiguous run

Every output is written by one thread, and each sum runs in a fixed order, so results are the
same on every run. The weight gradient sums over images: images are split into groups of a
fixed size (independent of the thread count), each group sums its images in order, then the
groups are added in order. (Splitting a strided image into stride-1 phase planes instead of
im2col measured 1.2-2.2x slower here: the strided gathers cost more than they save.)
"""

import numpy as np
from numba import prange

from ._jit import jit
from ._pool import empty

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


@jit()
def _layout(c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """Where each tap's values sit, for one image: (unit, wl, m, p, tap_row, tap_off).

    Every tap t gets a contiguous run of m values, source[tap_row[t], tap_off[t] + q] for
    q < m, that lines up with the output pixels in rows of width wl (q = oy*wl + ox):

    - stride 1 ("unit"): no copies at all. The image is zero-padded once into planes of width
      wl = w + 2*pw (plus a tail of (kw-1)*dw zeros), flattened to p values each; tap (c, i, j)
      is then the run starting at i*dh*wl + j*dw of plane c. Outputs come out wl wide, and the
      wl - ow extra columns per row are ignored (forward) or kept zero (backward).

            padded plane, wl = 6          tap (i=1, j=2) of a 3x3 window, stride 1
            . . . . . .                   output (oy, ox) reads plane[(oy+1)*wl + ox + 2],
            . a b c d .                   for all oy, ox: one run of oh*wl values
            . e f g h .
            . . . . . .

    - any other stride: the taps are the rows of the image's im2col columns (wl = ow).
    """
    unit = sh == 1 and sw == 1
    k = c * kh * kw
    tap_row = np.empty(k, dtype=np.int64)
    tap_off = np.empty(k, dtype=np.int64)
    if unit:
        wl = w + 2 * pw
        p = (h + 2 * ph) * wl + (kw - 1) * dw
    else:
        wl = ow
        p = oh * ow
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                t = (ch * kh + i) * kw + j
                if unit:
                    tap_row[t] = ch
                    tap_off[t] = i * dh * wl + j * dw
                else:
                    tap_row[t] = t
                    tap_off[t] = 0
    return unit, wl, oh * wl, p, tap_row, tap_off


@jit()
def _source(x, unit, wl, p, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """One image's taps: its zero-padded planes (unit stride) or its im2col columns."""
    c, h, w = x.shape
    if unit:
        src = np.zeros((c, p), dtype=x.dtype)
        for ch in range(c):
            for hy in range(h):
                base = (hy + ph) * wl + pw
                for wx in range(w):
                    src[ch, base + wx] = x[ch, hy, wx]
        return src
    src = np.empty((c * kh * kw, p), dtype=x.dtype)
    _columns(x, src, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return src


@jit()
def _widen(g, wl):
    """g (O, oh, ow) -> (O, oh*wl), each row padded with zeros to width wl."""
    o, oh, ow = g.shape
    out = np.zeros((o, oh * wl), dtype=g.dtype)
    for oc in range(o):
        for oy in range(oh):
            for ox in range(ow):
                out[oc, oy * wl + ox] = g[oc, oy, ox]
    return out


def conv2d_image_fwd(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, oh, ow). Pass zeros for no bias."""
    y = empty((x.shape[0], w.shape[0], oh, ow), x.dtype)
    _conv2d_image_fwd(x, w, b, y, sh, sw, ph, pw, dh, dw)
    return y


def conv2d_image_bwd_input(gy, w, h, wd, sh, sw, ph, pw, dh, dw):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd): the adjoint of conv2d in x."""
    gx = empty((gy.shape[0], w.shape[1], h, wd), gy.dtype)
    _conv2d_image_bwd_input(gy, w, gx, sh, sw, ph, pw, dh, dw)
    return gx


@jit(parallel=True)
def _conv2d_image_fwd(x, w, b, y, sh, sw, ph, pw, dh, dw):
    """conv2d_image_fwd's loop, into y (N, O, oh, ow)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    k = c * kh * kw
    w2 = w.reshape(o, k)
    unit, wl, m, p, tap_row, tap_off = _layout(c, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    for img in prange(n):  # each image's output belongs to one thread
        src = _source(x[img], unit, wl, p, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        acc = np.empty((o, m), dtype=x.dtype)  # (O, oh*wl)
        for oc in range(o):
            acc[oc] = b[oc]
        # four output rows at a time: each tap's run is read once for four multiply-adds
        oc = 0
        while oc + 4 <= o:
            y0 = acc[oc]
            y1 = acc[oc + 1]
            y2 = acc[oc + 2]
            y3 = acc[oc + 3]
            for t in range(k):
                w0 = w2[oc, t]
                w1 = w2[oc + 1, t]
                w2_ = w2[oc + 2, t]
                w3 = w2[oc + 3, t]
                r = src[tap_row[t], tap_off[t]:tap_off[t] + m]  # a view: indices provably >= 0
                for q in range(m):
                    v = r[q]
                    y0[q] += w0 * v
                    y1[q] += w1 * v
                    y2[q] += w2_ * v
                    y3[q] += w3 * v
            oc += 4
        while oc < o:
            yr = acc[oc]
            for t in range(k):
                wv = w2[oc, t]
                r = src[tap_row[t], tap_off[t]:tap_off[t] + m]
                for q in range(m):
                    yr[q] += wv * r[q]
            oc += 1
        for oc in range(o):  # drop the extra columns of the wide rows
            for oy in range(oh):
                for ox in range(ow):
                    y[img, oc, oy, ox] = acc[oc, oy * wl + ox]


@jit(parallel=True)
def _conv2d_image_bwd_input(gy, w, gx, sh, sw, ph, pw, dh, dw):
    """conv2d_image_bwd_input's loop, into gx (N, C, h, wd)."""
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    h, wd = gx.shape[2], gx.shape[3]
    k = c * kh * kw
    w2 = w.reshape(o, k)
    unit, wl, m, p, tap_row, tap_off = _layout(c, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    for img in prange(n):  # each image's gradient belongs to one thread
        g = _widen(gy[img], wl)  # (O, oh*wl), zero in the extra columns
        row = np.empty(m, dtype=gy.dtype)
        gxi = gx[img]
        if unit:
            gsrc = np.zeros((c, p), dtype=gy.dtype)  # the padded planes' gradient
        else:
            gxi[:] = 0
        for t in range(k):
            # row = W[:, t] @ g: tap t's share of every output pixel's gradient
            row[:] = 0
            for oc in range(o):
                wv = w2[oc, t]
                gr = g[oc]
                for q in range(m):
                    row[q] += wv * gr[q]
            if unit:  # the run tap t read in the forward gets its gradient back
                dst = gsrc[tap_row[t], tap_off[t]:tap_off[t] + m]
                for q in range(m):
                    dst[q] += row[q]
            else:
                _add_row(row, gxi, t, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        if unit:  # the padding's gradient is dropped
            for ch in range(c):
                for hy in range(h):
                    base = (hy + ph) * wl + pw
                    for wx in range(wd):
                        gxi[ch, hy, wx] = gsrc[ch, base + wx]


@jit(parallel=True, reassociate=True)
def conv2d_image_bwd_weight(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw)."""
    n, c, h, wd = x.shape
    o, oh, ow = gy.shape[1:]
    k = c * kh * kw
    unit, wl, m, p, tap_row, tap_off = _layout(c, h, wd, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    groups = (n + WEIGHT_GROUP - 1) // WEIGHT_GROUP
    # float64: sums over many images keep their precision. np.empty, zeroed by each group: an
    # np.zeros (or any array expression) here would be one more parallel region to wake the
    # threads for, measured 3x slower in all with OMP_WAIT_POLICY=PASSIVE
    partial = np.empty((groups, o, k))
    for grp in prange(groups):  # each group owns its partial sum
        acc = partial[grp]
        acc[:] = 0
        for img in range(grp * WEIGHT_GROUP, min(n, (grp + 1) * WEIGHT_GROUP)):
            src = _source(x[img], unit, wl, p, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
            g = _widen(gy[img], wl)  # zero in the extra columns: they add nothing
            for oc in range(o):
                gr = g[oc]
                for t in range(k):
                    # dot(gy row, tap run); `reassociate` lets the compiler split this sum
                    # into vector lanes, in an order fixed at compile time
                    r = src[tap_row[t], tap_off[t]:tap_off[t] + m]
                    s = x.dtype.type(0)
                    for q in range(m):
                        s += gr[q] * r[q]
                    acc[oc, t] += s
    return _sum_groups(partial, x.dtype.type(0)).reshape(o, c, kh, kw)


@jit()
def _sum_groups(partial, zero):
    """The groups' partial sums (G, O, K) added in order (the same sum on every run), cast to
    the dtype of ``zero``; serial, so it wakes no threads."""
    g, o, k = partial.shape
    out = np.empty((o, k), dtype=type(zero))
    for oc in range(o):
        for t in range(k):
            s = 0.0
            for grp in range(g):
                s += partial[grp, oc, t]
            out[oc, t] = s
    return out
