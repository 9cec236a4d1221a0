"""im2col and col2im: a convolution as one matrix product.

im2col copies every window of the (zero-padded) input into a column, so that
``weight (O, C*kh*kw) @ cols (C*kh*kw, oh*ow)`` is the convolution. col2im is its adjoint:
it adds every column entry back onto the pixel it came from, so overlapping windows sum.

    input plane (H x W), 3x3 window at output (oy, ox), stride s, dilation d, padding p:

        row = oy*s - p + i*d   for tap i in 0..kh-1
        col = ox*s - p + j*d   for tap j in 0..kw-1

    cols[n, (c*kh + i)*kw + j, oy*ow + ox] = x[n, c, row, col]   (0 where row/col is padding)

Both kernels run in parallel over the (n, c) planes: each plane owns its own rows of ``cols``
(im2col) and its own output plane (col2im), so no two threads ever write the same element and
the result is the same on every run. The ``_rows`` variants handle output rows
[oy0, oy1) only, so a caller can bound the scratch memory of one call.
"""

from numba import prange

from ._jit import jit
from ._pool import empty, zeros


def im2col_rows(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1):
    """cols (N, C*kh*kw, (oy1-oy0)*ow) for output rows oy0..oy1-1 of x (N, C, H, W)."""
    n, c = x.shape[:2]
    cols = empty((n, c * kh * kw, (oy1 - oy0) * ow), x.dtype)
    _im2col_rows(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
    return cols


@jit(parallel=True)
def _im2col_rows(x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1):
    """im2col_rows's loop, into cols."""
    n, c, h, w = x.shape
    rows = oy1 - oy0
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        for i in range(kh):
            for j in range(kw):
                r = (ch * kh + i) * kw + j
                for oy in range(rows):
                    hy = (oy0 + oy) * sh - ph + i * dh
                    base = oy * ow
                    if hy < 0 or hy >= h:
                        for ox in range(ow):
                            cols[b, r, base + ox] = 0
                        continue
                    for ox in range(ow):
                        wx = ox * sw - pw + j * dw
                        if wx >= 0 and wx < w:
                            cols[b, r, base + ox] = x[b, ch, hy, wx]
                        else:
                            cols[b, r, base + ox] = 0


@jit(parallel=True)
def col2im_rows(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1):
    """Add cols (N, C*kh*kw, (oy1-oy0)*ow), the windows of output rows oy0..oy1-1, into x."""
    n, c, h, w = x.shape
    rows = oy1 - oy0
    for plane in prange(n * c):
        b = plane // c
        ch = plane % c
        for i in range(kh):
            for j in range(kw):
                r = (ch * kh + i) * kw + j
                for oy in range(rows):
                    hy = (oy0 + oy) * sh - ph + i * dh
                    if hy < 0 or hy >= h:
                        continue
                    base = oy * ow
                    for ox in range(ow):
                        wx = ox * sw - pw + j * dw
                        if wx >= 0 and wx < w:
                            x[b, ch, hy, wx] += cols[b, r, base + ox]


def im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W) -> cols (N, C*kh*kw, oh*ow)."""
    return im2col_rows(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, 0, oh)


def col2im(cols, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """cols (N, C*kh*kw, oh*ow) -> x (N, C, H, W), overlapping windows summed."""
    x = zeros((cols.shape[0], c, h, w), cols.dtype)
    col2im_rows(cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, 0, oh)
    return x
