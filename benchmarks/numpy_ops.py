"""The NumPy column of the benchmarks: each op as a NumPy user would write it, vectorised.

Convolutions are im2col as a strided view (``sliding_window_view``) contracted with the weight by
``np.tensordot`` (one GEMM); their scatter side (col2im) is a loop over the kh*kw kernel taps,
each adding one strided slice. Max pooling and nearest upsampling loop over the
taps too; scatters at data-dependent indices use ``np.add.at``; linear is matmul.

Free functions, arrays and ints in, arrays out, in the input's dtype (float32 or float64).
NCHW throughout; stride and padding are ints applied to both axes; dilation is 1. Output sizes:

    conv2d            oh = (H + 2*p - kh) // s + 1
    conv_transpose2d  oh = (H - 1)*s - 2*p + kh + output_padding
    max_pool2d        oh = (H - kh) // s + 1           (no padding)

This module imports numpy only, so the comparison measures NumPy and nothing of npae.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d_fwd", "conv2d_bwd", "conv_transpose2d_fwd", "conv_transpose2d_bwd",
    "max_pool2d_fwd", "max_pool2d_bwd", "max_unpool2d_fwd", "max_unpool2d_bwd",
    "upsample_nearest2d_fwd", "upsample_nearest2d_bwd", "linear_fwd", "linear_bwd",
]


# ------------------------------------------------------------------------- shared helpers
def _pad(x, p):
    """Zero-pad the two spatial axes of an NCHW array by p on every side."""
    if p == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


def _windows(x, kh, kw, s, p):
    """im2col as a view: (N, C, H, W) -> (N, C, oh, ow, kh, kw), no copy.

    Element [n, c, i, j, a, b] is padded-x[n, c, i*s + a, j*s + b]. The copy into a GEMM-ready
    matrix happens inside ``np.tensordot``.
    """
    win = sliding_window_view(_pad(x, p), (kh, kw), axis=(2, 3))
    return win[:, :, ::s, ::s]


def _col2im(cols, hp, wp, s):
    """The adjoint of ``_windows`` (before cropping): sum every window back into the image.

    cols (N, oh, ow, C, kh, kw) -> (N, C, hp, wp). Tap (a, b) of window (i, j) lands on pixel
    (i*s + a, j*s + b); for a fixed tap those pixels form one strided slice, so a loop over the
    kh*kw taps does the whole scatter with no index arrays:

        tap (a, b):  out[:, :, a : a + s*oh : s, b : b + s*ow : s] += cols[..., a, b]
    """
    n, oh, ow, c, kh, kw = cols.shape
    out = np.zeros((n, c, hp, wp), dtype=cols.dtype)
    for a in range(kh):
        for b in range(kw):
            # (N, oh, ow, C) -> (N, C, oh, ow), a view
            out[:, :, a:a + s * oh:s, b:b + s * ow:s] += cols[..., a, b].transpose(0, 3, 1, 2)
    return out


def _nchw(y):
    """(N, oh, ow, C), as tensordot leaves it -> contiguous (N, C, oh, ow)."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------- conv2d
def conv2d_fwd(x, w, b, stride, padding):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, oh, ow)."""
    kh, kw = w.shape[2:]
    win = _windows(x, kh, kw, stride, padding)
    # contract C, kh, kw: (N, oh, ow, O)
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))
    if b is not None:
        y += b
    return _nchw(y)


def conv2d_bwd(x, w, gy, stride, padding):
    """Gradients of conv2d: (gx like x, gw like w, gb (O,))."""
    kh, kw = w.shape[2:]
    h, wd = x.shape[2:]
    p = padding
    win = _windows(x, kh, kw, stride, p)
    # weight gradient: correlate the input windows with gy over N, oh, ow -> (O, C, kh, kw)
    gw = np.tensordot(gy, win, axes=([0, 2, 3], [0, 2, 3]))
    # input gradient: each output pixel sends gy * w back over its window -> (N, oh, ow, C, kh, kw)
    cols = np.tensordot(gy, w, axes=([1], [0]))
    gxp = _col2im(cols, h + 2 * p, wd + 2 * p, stride)
    gx = np.ascontiguousarray(gxp[:, :, p:p + h, p:p + wd])
    gb = gy.sum(axis=(0, 2, 3))
    return gx, gw, gb


# ------------------------------------------------------------------------- conv_transpose2d
def conv_transpose2d_fwd(x, w, b, stride, padding, output_padding):
    """x (N, Cin, H, W), w (Cin, Cout, kh, kw) (PyTorch's layout), b (Cout,) or None.

    -> y (N, Cout, oh, ow), oh = (H - 1)*s - 2*p + kh + output_padding. The forward is conv2d's
    input gradient: each input pixel stamps x * w onto the output at stride s. output_padding
    adds no zeros of its own: it picks the larger of the sizes that stride s maps onto H (the
    extra bottom/right rows get whatever the stamps put there).
    """
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    s, p = stride, padding
    oh = (h - 1) * s - 2 * p + kh + output_padding
    ow = (wd - 1) * s - 2 * p + kw + output_padding
    # (N, H, W, Cout, kh, kw): the stamp of every input pixel
    cols = np.tensordot(x, w, axes=([1], [0]))
    # the uncropped output reaches row (H-1)*s + kh - 1; output_padding may ask for more
    full = _col2im(cols, max(oh + p, (h - 1) * s + kh), max(ow + p, (wd - 1) * s + kw), s)
    y = np.ascontiguousarray(full[:, :, p:p + oh, p:p + ow])
    if b is not None:
        y += b[:, None, None]
    return y


def conv_transpose2d_bwd(x, w, gy, stride, padding):
    """Gradients of conv_transpose2d: (gx like x, gw like w, gb (Cout,)).

    Both are conv2d's forward turned around: gx is gy convolved with the same weight, and gw
    correlates x with gy's windows. output_padding is implied by gy's shape.
    """
    h, wd = x.shape[2:]
    kh, kw = w.shape[2:]
    # windows over gy padded by p: exactly H x W of them, since output_padding < stride
    win = _windows(gy, kh, kw, stride, padding)[:, :, :h, :wd]
    # contract Cout, kh, kw: (N, H, W, Cin)
    gx = _nchw(np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])))
    # contract N, H, W: (Cin, Cout, kh, kw)
    gw = np.tensordot(x, win, axes=([0, 2, 3], [0, 2, 3]))
    gb = gy.sum(axis=(0, 2, 3))
    return gx, gw, gb


# ------------------------------------------------------------------------- max_pool2d
def max_pool2d_fwd(x, kernel, stride):
    """x (N, C, H, W) -> (y (N, C, oh, ow), idx int64 (N, C, oh, ow)).

    idx is flat within each H x W plane (row * W + col), PyTorch's format. A loop over the k*k
    kernel taps keeps a running maximum: tap (a, b) of every window is one strided slice,

        tap (a, b):  x[:, :, a : a + s*oh : s, b : b + s*ow : s]

    and a tap replaces the maximum only when strictly greater, so ties go to the first maximum
    in row-by-row scan order. (This beats argmax over a reshaped (..., k*k) window copy: NumPy
    reduces a short last axis slowly. Unlike that argmax, a NaN is not reported as the maximum
    unless it sits at tap (0, 0).)
    """
    k, s = kernel, stride
    n, c, h, wd = x.shape
    oh = (h - k) // s + 1
    ow = (wd - k) // s + 1
    # tap (0, 0) starts as the maximum; window (i, j) starts at flat index i*s*W + j*s
    y = x[:, :, 0:s * oh:s, 0:s * ow:s].copy()
    rows0 = np.arange(oh, dtype=np.int64)[:, None] * s
    start = rows0 * wd + np.arange(ow, dtype=np.int64) * s  # (oh, ow)
    idx = np.broadcast_to(start, y.shape).copy()
    for a in range(k):
        for b in range(k):
            if a == 0 and b == 0:
                continue
            v = x[:, :, a:a + s * oh:s, b:b + s * ow:s]
            better = v > y
            np.copyto(y, v, where=better)
            # tap (a, b) lies a rows and b columns past its window's start
            np.copyto(idx, start + (a * wd + b), where=better)
    return y, idx


def _plane_scatter_add(v, idx, plane_size):
    """Sum v into zeros (N, C, plane_size) at flat idx within each plane; duplicates add up."""
    n, c = v.shape[:2]
    out = np.zeros((n * c, plane_size), dtype=v.dtype)
    # (N*C, k) row numbers paired with (N*C, k) in-plane indices
    planes = np.arange(n * c)[:, None]
    np.add.at(out, (planes, idx.reshape(n * c, -1)), v.reshape(n * c, -1))
    return out


def max_pool2d_bwd(gy, idx, input_shape):
    """gy, idx (N, C, oh, ow) -> gx (input_shape): each gy added at its argmax.

    Overlapping windows (stride < kernel) can pick the same pixel, hence ``np.add.at``.
    """
    n, c, h, wd = input_shape
    return _plane_scatter_add(gy, idx, h * wd).reshape(n, c, h, wd)


# ------------------------------------------------------------------------- max_unpool2d
def max_unpool2d_fwd(x, idx, output_hw):
    """x, idx (N, C, H, W) -> y (N, C, oh, ow): x placed at the flat indices, zeros elsewhere.

    Values that share an index are summed (the rule npae documents; PyTorch leaves it undefined).
    """
    n, c = x.shape[:2]
    oh, ow = output_hw
    return _plane_scatter_add(x, idx, oh * ow).reshape(n, c, oh, ow)


def max_unpool2d_bwd(gy, idx):
    """gy (N, C, oh, ow), idx (N, C, H, W) -> gx (N, C, H, W): gy gathered at the indices."""
    n, c = gy.shape[:2]
    gx = np.take_along_axis(gy.reshape(n, c, -1), idx.reshape(n, c, -1), axis=-1)
    return gx.reshape(idx.shape)


# ------------------------------------------------------------------------- upsample_nearest2d
def upsample_nearest2d_fwd(x, scale):
    """x (N, C, H, W) -> y (N, C, H*scale, W*scale): each pixel fills a scale x scale block.

    Output pixels (a + scale*i, b + scale*j) all copy x[i, j]: one strided slice per offset
    (a, b), so scale*scale slice assignments fill y (faster than np.repeat twice).
    """
    n, c, h, wd = x.shape
    y = np.empty((n, c, h * scale, wd * scale), dtype=x.dtype)
    for a in range(scale):
        for b in range(scale):
            y[:, :, a::scale, b::scale] = x
    return y


def upsample_nearest2d_bwd(gy, scale):
    """gy (N, C, H*scale, W*scale) -> gx (N, C, H, W): the sum over each scale x scale block.

    The forward's slices, summed: scale*scale strided adds. (reshape to (N, C, H, scale, W,
    scale) and .sum(axis=(3, 5)) is the one-liner, but NumPy sums those short inner axes about
    ten times slower.)
    """
    n, c, oh, ow = gy.shape
    gx = np.zeros((n, c, oh // scale, ow // scale), dtype=gy.dtype)
    for a in range(scale):
        for b in range(scale):
            gx += gy[:, :, a::scale, b::scale]
    return gx


# ------------------------------------------------------------------------- linear
def linear_fwd(x, w, b):
    """x (..., in), w (out, in) (PyTorch's layout), b (out,) or None -> y (..., out)."""
    y = x @ w.T
    if b is not None:
        y += b
    return y


def linear_bwd(x, w, gy):
    """Gradients of linear: (gx like x, gw (out, in), gb (out,))."""
    gx = gy @ w
    # fold any leading batch axes into one: (B, out) and (B, in)
    gy2 = gy.reshape(-1, gy.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    gw = gy2.T @ x2
    gb = gy2.sum(axis=0)
    return gx, gw, gb
