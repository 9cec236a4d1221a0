"""GPU twins of the convolution kernels (same signatures as ``npae.kernels.conv2d`` and
``npae.kernels.conv2d_image``).

The im2col route is the CPU one: columns from ``im2col_rows``, the GEMMs through the array
library (cuBLAS for CuPy arrays), ``col2im_rows`` for the input gradient, in chunks whose column
buffer fits ``max_scratch``. The weight gradient of a chunk is one GEMM over all its images at
once, (O, nb*L) @ (nb*L, K), so nothing is summed outside the GEMM.

The twins of the CPU's one-image kernels (``conv2d_image_*``: one image per CPU thread, its
taps in cache) are, on a GPU, gathers over the definition, one thread per output element:

    forward     y[n, o, oy, ox]  = sum_{c, i, j} w[o, c, i, j] x[n, c, oy*sh - ph + i*dh, ...]
    grad input  gx[n, c, hy, wx] = sum_{o, i, j} w[o, c, i, j] gy[n, o, oy, ox]
                                   over the (oy, ox) whose tap (i, j) reads (hy, wx)
    grad weight gw[o, c, i, j]   = sum_{n, oy, ox} gy[n, o, oy, ox] x[n, c, ...]

each summed in a fixed order, so results are the same on every run.
"""

from numba import cuda

from .._arrays import array_module
from ..conv2d import DEFAULT_MAX_SCRATCH
from ._launch import launch
from .im2col import col2im_rows, im2col_rows


def _use_image(method, o, c, kh, kw):
    # By default always im2col + cuBLAS on a GPU: the CPU's rule (npae.kernels.conv2d_plan) was
    # measured on 2 cores, and the gather weight gradient here runs only O*C*kh*kw threads, each
    # summing over the whole batch. 'image' stays available on request.
    if method is None:
        return False
    if method not in ("image", "im2col"):
        raise ValueError(f"method must be None, 'image' or 'im2col', got {method!r}")
    return method == "image"


def _chunks(n, k, oh, ow, itemsize, max_scratch):
    """(s, e, oy0, oy1) pieces whose column buffer (images * k * rows * ow * itemsize bytes)
    stays within max_scratch. No cache-sized target as on the CPU: a GPU wants big GEMMs."""
    row_bytes = k * ow * itemsize
    image_bytes = row_bytes * oh
    if image_bytes <= max_scratch:
        nb, rows = max(1, min(n, max_scratch // max(image_bytes, 1))), oh
    else:
        nb, rows = 1, max(1, min(oh, max_scratch // row_bytes))
    for s in range(0, n, nb):
        for oy0 in range(0, oh, rows):
            yield s, min(s + nb, n), oy0, min(oy0 + rows, oh)


def conv2d_fwd(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow, max_scratch=DEFAULT_MAX_SCRATCH,
               method=None):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, oh, ow)."""
    xp = array_module(x)
    n, c = x.shape[:2]
    o, _, kh, kw = w.shape
    if _use_image(method, o, c, kh, kw):
        return conv2d_image_fwd(x, w, xp.zeros(o, dtype=x.dtype) if b is None else b,
                                sh, sw, ph, pw, dh, dw, oh, ow)
    k = c * kh * kw
    w2 = w.reshape(o, k)
    y = xp.empty((n, o, oh * ow), dtype=x.dtype)
    for s, e, oy0, oy1 in _chunks(n, k, oh, ow, x.itemsize, max_scratch):
        cols = im2col_rows(x[s:e], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
        y[s:e, :, oy0 * ow:oy1 * ow] = xp.matmul(w2, cols)  # (O, K) @ (nb, K, L) -> (nb, O, L)
    if b is not None:
        y += b.reshape(1, o, 1)
    return y.reshape(n, o, oh, ow)


def conv2d_bwd_input(gy, w, h, wd, sh, sw, ph, pw, dh, dw, max_scratch=DEFAULT_MAX_SCRATCH,
                     method=None):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd): the adjoint of conv2d in x."""
    xp = array_module(gy)
    n, o, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    if _use_image(method, o, c, kh, kw):
        return conv2d_image_bwd_input(gy, w, h, wd, sh, sw, ph, pw, dh, dw)
    k = c * kh * kw
    w2t = w.reshape(o, k).T
    gy3 = gy.reshape(n, o, oh * ow)
    gx = xp.zeros((n, c, h, wd), dtype=gy.dtype)
    for s, e, oy0, oy1 in _chunks(n, k, oh, ow, gy.itemsize, max_scratch):
        gcols = xp.matmul(w2t, gy3[s:e, :, oy0 * ow:oy1 * ow])  # (nb, K, rows*ow)
        col2im_rows(gcols, gx[s:e], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
    return gx


def conv2d_bwd_weight(x, gy, kh, kw, sh, sw, ph, pw, dh, dw, max_scratch=DEFAULT_MAX_SCRATCH,
                      method=None):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw)."""
    xp = array_module(x)
    n, c = x.shape[:2]
    _, o, oh, ow = gy.shape
    if _use_image(method, o, c, kh, kw):
        return conv2d_image_bwd_weight(x, gy, kh, kw, sh, sw, ph, pw, dh, dw)
    k = c * kh * kw
    gy3 = gy.reshape(n, o, oh * ow)
    gw = xp.zeros((o, k), dtype=x.dtype)
    for s, e, oy0, oy1 in _chunks(n, k, oh, ow, x.itemsize, max_scratch):
        cols = im2col_rows(x[s:e], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
        # (nb, O, L) -> (O, nb*L) and (nb, K, L) -> (nb*L, K): the chunk's sum is one GEMM
        g2 = xp.ascontiguousarray(gy3[s:e, :, oy0 * ow:oy1 * ow].transpose(1, 0, 2))
        c2 = xp.ascontiguousarray(cols.transpose(0, 2, 1))
        gw += g2.reshape(o, -1) @ c2.reshape(-1, k)
    return gw.reshape(o, c, kh, kw)


def conv_transpose2d_fwd(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow,
                         max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, Cin, H, W), w (Cin, Cout, kh, kw), b (Cout,) or None -> y (N, Cout, oh, ow)."""
    y = conv2d_bwd_input(x, w, oh, ow, sh, sw, ph, pw, dh, dw, max_scratch, method)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


@cuda.jit
def _gather_fwd_kernel(n_total, x, w, y, sh, sw, ph, pw, dh, dw):
    c, h, wd = x.shape[1], x.shape[2], x.shape[3]
    o, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    oh, ow = y.shape[2], y.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        ox = t % ow
        oy = (t // ow) % oh
        oc = (t // (ow * oh)) % o
        b = t // (ow * oh * o)
        acc = y.dtype.type(0)
        for ch in range(c):
            for i in range(kh):
                hy = oy * sh - ph + i * dh
                if hy < 0 or hy >= h:
                    continue
                for j in range(kw):
                    wx = ox * sw - pw + j * dw
                    if wx >= 0 and wx < wd:
                        acc += w[oc, ch, i, j] * x[b, ch, hy, wx]
        y[b, oc, oy, ox] = acc


@cuda.jit
def _gather_bwd_input_kernel(n_total, gy, w, gx, sh, sw, ph, pw, dh, dw):
    o, oh, ow = gy.shape[1], gy.shape[2], gy.shape[3]
    kh, kw = w.shape[2], w.shape[3]
    c, h, wd = gx.shape[1], gx.shape[2], gx.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        wx = t % wd
        hy = (t // wd) % h
        ch = (t // (wd * h)) % c
        b = t // (wd * h * c)
        acc = gx.dtype.type(0)
        for oc in range(o):
            for i in range(kh):
                ty = hy + ph - i * dh
                if ty < 0 or ty % sh != 0 or ty // sh >= oh:
                    continue
                oy = ty // sh
                for j in range(kw):
                    tx = wx + pw - j * dw
                    if tx < 0 or tx % sw != 0 or tx // sw >= ow:
                        continue
                    acc += w[oc, ch, i, j] * gy[b, oc, oy, tx // sw]
        gx[b, ch, hy, wx] = acc


@cuda.jit
def _gather_bwd_weight_kernel(n_total, x, gy, gw, sh, sw, ph, pw, dh, dw):
    n, h, wd = x.shape[0], x.shape[2], x.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    c, kh, kw = gw.shape[1], gw.shape[2], gw.shape[3]
    for t in range(cuda.grid(1), n_total, cuda.gridsize(1)):
        j = t % kw
        i = (t // kw) % kh
        ch = (t // (kw * kh)) % c
        oc = t // (kw * kh * c)
        total = 0.0  # float64 across images, as on the CPU: long sums keep their precision
        for b in range(n):
            acc = gw.dtype.type(0)
            for oy in range(oh):
                hy = oy * sh - ph + i * dh
                if hy < 0 or hy >= h:
                    continue
                for ox in range(ow):
                    wx = ox * sw - pw + j * dw
                    if wx >= 0 and wx < wd:
                        acc += gy[b, oc, oy, ox] * x[b, ch, hy, wx]
            total += acc
        gw[oc, ch, i, j] = total


def conv2d_image_fwd(x, w, b, sh, sw, ph, pw, dh, dw, oh, ow):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) -> y (N, O, oh, ow). Pass zeros for no bias."""
    y = array_module(x).empty((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)
    launch(_gather_fwd_kernel, y.size, x, w, y, sh, sw, ph, pw, dh, dw)
    y += b.reshape(1, -1, 1, 1)
    return y


def conv2d_image_bwd_input(gy, w, h, wd, sh, sw, ph, pw, dh, dw):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd)."""
    gx = array_module(gy).empty((gy.shape[0], w.shape[1], h, wd), dtype=gy.dtype)
    launch(_gather_bwd_input_kernel, gx.size, gy, w, gx, sh, sw, ph, pw, dh, dw)
    return gx


def conv2d_image_bwd_weight(x, gy, kh, kw, sh, sw, ph, pw, dh, dw):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw)."""
    gw = array_module(x).empty((gy.shape[1], x.shape[1], kh, kw), dtype=x.dtype)
    launch(_gather_bwd_weight_kernel, gw.size, x, gy, gw, sh, sw, ph, pw, dh, dw)
    return gw
