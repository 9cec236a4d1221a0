"""GPU twins of the convolution kernels (same names and signatures as ``npae.kernels.conv2d`` and
``npae.kernels.conv2d_image``).

The im2col route is the CPU's own code: the drivers of kernels/conv2d.py (chunks of the batch,
columns from ``im2col_rows``, the GEMMs, ``col2im_rows`` for the input gradient), bound here to
``GPU``, this backend's pieces:

- the column kernels of cuda/im2col.py; the GEMMs go through the array library (cuBLAS for
  CuPy arrays);
- its own planner: always im2col + cuBLAS unless ``method='image'`` asks for the gathers below
  (the CPU's rule was measured on 2 cores, and the gather weight gradient runs only
  O*C*kh*kw threads, each summing over the whole batch), in chunks as large as
  ``max_scratch`` allows, with no cache-sized target as on the CPU: a GPU wants big GEMMs;
- the weight gradient of a chunk is one GEMM over all its images at once,
  (O, nb*L) @ (nb*L, K), so nothing is summed outside the GEMM.

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
from ..conv2d import (
    DEFAULT_MAX_SCRATCH,
    ConvBackend,
    _method,
    check_direction,
    conv2d_bwd_input_with,
    conv2d_bwd_weight_with,
    conv2d_fwd_with,
    conv_transpose2d_fwd_with,
    fit_chunks,
)
from ._launch import launch
from .im2col import col2im_rows, im2col_rows


# -------------------------------------------------------------------------- the planners
def conv2d_plan(direction, n, c, o, kh, kw, sh, sw, oh, ow, itemsize,
                max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """(path, scratch bytes) of one conv2d kernel call on a GPU: 'im2col' unless ``method``
    asks for 'image'. The scratch is one chunk of columns for 'im2col', none for 'image' (the
    gathers write straight into the result)."""
    check_direction(direction)
    if _use_image(method):
        return "image", 0
    k = c * kh * kw
    nb, rows = plan_chunks(n, k, oh, ow, itemsize, max_scratch)
    return "im2col", nb * k * rows * ow * itemsize


def _use_image(method):
    # the gathers only on request: see this module's docstring
    return _method(method, use_image=False) == "image"


def plan_chunks(n, k, oh, ow, itemsize, max_scratch):
    """(images per chunk, output rows per chunk) so that one column buffer
    (images * k * rows * ow * itemsize bytes) stays within max_scratch, as large as it allows."""
    return fit_chunks(n, k, oh, ow, itemsize, max_scratch)


# ------------------------------------------------------------ the one-image twins: gathers
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


# ------------------------------------------------------------------- the GPU's kernels
def _add_weight_grad(gw, gy, cols):
    """gw (O, K) += the chunk's sum_i gy[i] @ cols[i].T, as one GEMM."""
    xp = array_module(gw)
    o, k = gw.shape
    # (nb, O, L) -> (O, nb*L) and (nb, K, L) -> (nb*L, K): the chunk's sum is one GEMM
    g2 = xp.ascontiguousarray(gy.transpose(1, 0, 2))
    c2 = xp.ascontiguousarray(cols.transpose(0, 2, 1))
    gw += g2.reshape(o, -1) @ c2.reshape(-1, k)


def _empty(like, shape, dtype):
    return array_module(like).empty(shape, dtype=dtype)  # CuPy keeps its own memory pool


def _add_bias(y, b):
    y += b.reshape(1, -1, 1)


GPU = ConvBackend(im2col_rows, col2im_rows, conv2d_image_fwd, conv2d_image_bwd_input,
                  conv2d_image_bwd_weight, conv2d_plan, plan_chunks, _add_weight_grad, _empty,
                  _add_bias)


def conv2d_fwd(x, w, b, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, geom.oh, geom.ow)."""
    return conv2d_fwd_with(GPU, x, w, b, geom, max_scratch, method)


def conv2d_bwd_input(gy, w, h, wd, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd): the adjoint of conv2d in x."""
    return conv2d_bwd_input_with(GPU, gy, w, h, wd, geom, max_scratch, method)


def conv2d_bwd_weight(x, gy, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw)."""
    return conv2d_bwd_weight_with(GPU, x, gy, geom, max_scratch, method)


def conv_transpose2d_fwd(x, w, b, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, Cin, H, W), w (Cin, Cout, kh, kw), b (Cout,) or None -> y (N, Cout, oh, ow)."""
    return conv_transpose2d_fwd_with(GPU, x, w, b, geom, max_scratch, method)
