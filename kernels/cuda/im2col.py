"""GPU twins of im2col and col2im (same signatures as ``npae.kernels.im2col``).

    cols[n, (c*kh + i)*kw + j, (oy - oy0)*ow + ox] = x[n, c, oy*sh - ph + i*dh, ox*sw - pw + j*dw]

im2col is a gather already: one thread per column entry. col2im, the scatter-add of every
window back onto the image, is turned around into a gather: one thread per image pixel
(n, c, hy, wx) finds the window entries that read it. Tap (i, j) of output (oy, ox) reads the
pixel when

    oy*sh = hy + ph - i*dh    and    ox*sw = wx + pw - j*dw

so for each tap there is at most one (oy, ox): it exists when both right-hand sides are
non-negative multiples of the stride and the quotients fall inside the output rows handled.
The thread sums those entries in tap order (i, then j): no atomics, the same sum on every run.
"""

from numba import cuda

from .._arrays import array_module
from ._launch import launch


@cuda.jit
def _im2col_kernel(n_total, x, cols, kh, kw, sh, sw, ph, pw, dh, dw, ow, oy0, rows):
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    length = rows * ow
    k = c * kh * kw
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        col = t % length
        r = (t // length) % k
        b = t // (length * k)
        oy = oy0 + col // ow
        ox = col % ow
        j = r % kw
        i = (r // kw) % kh
        ch = r // (kw * kh)
        hy = oy * sh - ph + i * dh
        wx = ox * sw - pw + j * dw
        if hy >= 0 and hy < h and wx >= 0 and wx < w:
            cols[b, r, col] = x[b, ch, hy, wx]
        else:
            cols[b, r, col] = 0


@cuda.jit
def _col2im_kernel(n_total, cols, x, kh, kw, sh, sw, ph, pw, dh, dw, ow, oy0, oy1):
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        wx = t % w
        hy = (t // w) % h
        ch = (t // (w * h)) % c
        b = t // (w * h * c)
        acc = x.dtype.type(0)
        for i in range(kh):
            ty = hy + ph - i * dh
            if ty < 0 or ty % sh != 0:
                continue
            oy = ty // sh
            if oy < oy0 or oy >= oy1:
                continue
            for j in range(kw):
                tx = wx + pw - j * dw
                if tx < 0 or tx % sw != 0:
                    continue
                ox = tx // sw
                if ox >= ow:
                    continue
                acc += cols[b, (ch * kh + i) * kw + j, (oy - oy0) * ow + ox]
        x[b, ch, hy, wx] += acc


def im2col_rows(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1):
    """cols (N, C*kh*kw, (oy1-oy0)*ow) for output rows oy0..oy1-1 of x (N, C, H, W)."""
    n, c = x.shape[:2]
    rows = oy1 - oy0
    cols = array_module(x).empty((n, c * kh * kw, rows * ow), dtype=x.dtype)
    launch(_im2col_kernel, cols.size, x, cols, kh, kw, sh, sw, ph, pw, dh, dw, ow, oy0, rows)
    return cols


def col2im_rows(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1):
    """Add cols (N, C*kh*kw, (oy1-oy0)*ow), the windows of output rows oy0..oy1-1, into x."""
    launch(_col2im_kernel, x.size, cols, x, kh, kw, sh, sw, ph, pw, dh, dw, ow, oy0, oy1)


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow)."""
    return im2col_rows(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, 0, oh)


def col2im(cols, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols (N, C*kh*kw, oh*ow) -> x (N, C, H, W), overlapping windows summed."""
    x = array_module(cols).zeros((cols.shape[0], c, h, w), dtype=cols.dtype)
    col2im_rows(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, 0, oh)
    return x
