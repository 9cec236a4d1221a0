"""Convolution by im2col + GEMM, in bounded scratch memory; transpose convolution from the same
pieces. Written once, for the CPU and the GPU.

    forward       y[n]  = W (O, C*kh*kw) @ im2col(x[n])               -> (O, oh*ow)
    grad input    gx[n] = col2im(W.T @ gy[n])                          (scatter-add of windows)
    grad weight   gW    = sum_n gy[n] @ im2col(x[n]).T
    transpose     conv_transpose2d(x, W) is exactly conv2d's grad-input with gy = x

The column buffer of a whole batch can be huge (C*kh*kw*oh*ow values per image), so every call
works through the batch in chunks whose columns fit in ``max_scratch`` bytes, and through the
output rows of one image when even a single image would not fit. Only the GEMMs (NumPy's BLAS,
cuBLAS through CuPy on a GPU) see large arrays; the index work is in ``im2col_rows`` and
``col2im_rows``.

When that round trip through memory costs more than the GEMM, the calls go to conv2d_image.py
instead, which works one image per thread with its taps in cache (for unit stride, no columns
at all). ``conv2d_plan`` decides, from measurements noted below: unit stride and a window of
64+ taps (up to 16 output channels for the forward and input gradient, any number for the
weight gradient), or any stride with a single output channel; the weight gradient also for up
to 16 output channels at any stride and window.
``method=`` forces either path.

One driver per direction, for both backends: ``conv2d_fwd_with`` and its siblings below take a
``ConvBackend``, the pieces that differ: the jitted (here) or launched (kernels/cuda/) im2col,
col2im and one-image kernels, the planner with its own rule, and how a chunk's weight gradient
is summed. Arrays are made with the input's array module (NumPy here, CuPy on a GPU). The CPU's
kernels at the bottom of this file are the drivers bound to ``CPU``; kernels/cuda/conv2d.py
binds the same drivers to its ``GPU``.

The geometry is named: ``geom`` has the fields kh, kw, sh, sw, ph, pw, dh, dw, oh, ow (and
``geom.args``, the first eight in that order), as ``npae.engine.shapes.Geometry`` does. The
drivers unpack it once and hand plain integers to the jitted kernels.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numba
from numba import prange

from ._arrays import array_module
from ._jit import jit
from ._pool import empty as pool_empty
from .conv2d_image import conv2d_image_bwd_input, conv2d_image_bwd_weight, conv2d_image_fwd
from .im2col import col2im_rows, im2col_rows

DEFAULT_MAX_SCRATCH = 64 * 2**20

# Chunks aim at this size even when the bound allows more: columns that stay in cache while the
# GEMM reads them right after im2col wrote them. Measured on 2 cores (npae bench scaling and a
# 16->16 3x3 conv at batch 128, forward+backward): 111 ms with 64 MiB chunks, 41 ms with 4 MiB,
# 44 ms with 1 MiB; the article's small models were unchanged.
CACHE_CHUNK = 4 * 2**20

# Which path, measured on 2 cores at batch 128 with `method=` forced (same process, best of 20):
# - unit stride: one image at a time (conv2d_image.py) wins for up to 16 output channels over a
#   window of C*kh*kw >= 64 taps: 16->4 3x3 on 14x14 forward 2.2 -> 0.9 ms, input gradient
#   3.1 -> 1.3 ms, weight gradient 2.5 -> 1.1 ms; 32->1 on 28x28 forward 12 -> 1.7 ms. The
#   weight gradient wins whatever the output channels, so it follows the window length only;
# - batched im2col + BLAS wins with 32 or more output channels (8->32 on 28x28: 9.2 against
#   13.7 ms forward) and on short windows (1->16 3x3: 0.9 against 1.3 ms);
# - other strides: the one-image path still builds im2col columns (per image), and wins only
#   for a single output channel (16->1 3x3 s2 on 28x28: input gradient 9.9 -> 3.6 ms), where
#   the GEMM is one row; with 4 or more, im2col + BLAS wins (16->4 2x2 s2: 0.50 against 0.59 ms
#   forward; 16->32 3x3 s2 weight gradient: 8.0 against 12.0 ms).
# - with BLAS held at one thread inside npae (npae/engine/threads.py; issue 12), remeasured:
#   the weight gradient goes one image at a time for up to 16 output channels, at any stride
#   and window (the transpose convolutions' 16->4 2x2 s2: 0.44 -> 0.24 ms, 1->16 2x2 s2:
#   0.32 -> 0.19 ms; conv2d 1->16 3x3: 0.95 -> 0.66 ms; 16->32 3x3 s2 ties, and stays with
#   im2col). Best of 9, interleaved, batch 128.
IMAGE_MAX_OUT = 16
IMAGE_MIN_WINDOW = 64
# ...and only while one image's columns stay cache-sized: beyond that (large images) the
# batched path's row chunking bounds the memory and wins.
IMAGE_MAX_COLS = 2 * 2**20


# --------------------- the planners: the CPU's rule; the checks and chunking both backends use
def _image_fits(k, oh, ow, itemsize, max_scratch):
    """One image's columns (k, oh*ow) per thread fit in cache and within max_scratch."""
    per_image = k * oh * ow * itemsize
    return per_image <= IMAGE_MAX_COLS and per_image * numba.get_num_threads() <= max_scratch


def conv2d_plan(direction, n, c, o, kh, kw, sh, sw, oh, ow, itemsize,
                max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """(path, scratch bytes) of one conv2d kernel call, as the kernels below choose them.

    direction: 'fwd', 'bwd_input' or 'bwd_weight'; c, o: the convolution's input and output
    channels (for conv_transpose2d, its output and input channels). The scratch is the largest
    buffer the path holds at once: one chunk of columns for 'im2col', one image's columns (an
    upper bound: stride 1 needs less) per thread for 'image'.
    """
    k = c * kh * kw
    check_direction(direction)
    if direction == "bwd_weight":
        wanted = o <= IMAGE_MAX_OUT or (sh == 1 and sw == 1 and k >= IMAGE_MIN_WINDOW)
    elif sh != 1 or sw != 1:
        wanted = o == 1 and k >= IMAGE_MIN_WINDOW
    else:
        wanted = o <= IMAGE_MAX_OUT and k >= IMAGE_MIN_WINDOW
    path = _method(method, wanted and _image_fits(k, oh, ow, itemsize, max_scratch))
    if path == "image":
        return path, k * oh * ow * itemsize * min(n, numba.get_num_threads())
    nb, rows = plan_chunks(n, k, oh, ow, itemsize, max_scratch)
    return path, nb * k * rows * ow * itemsize


def check_direction(direction):
    if direction not in ("fwd", "bwd_input", "bwd_weight"):
        raise ValueError(f"direction must be 'fwd', 'bwd_input' or 'bwd_weight', got {direction!r}")


def _method(method, use_image):
    if method is None:
        return "image" if use_image else "im2col"
    if method not in ("image", "im2col"):
        raise ValueError(f"method must be None, 'image' or 'im2col', got {method!r}")
    return method


def plan_chunks(n, k, oh, ow, itemsize, max_scratch):
    """(images per chunk, output rows per chunk) so that one column buffer
    (images * k * rows * ow * itemsize bytes) stays within max_scratch, and near CACHE_CHUNK."""
    return fit_chunks(n, k, oh, ow, itemsize, min(max_scratch, CACHE_CHUNK))


def fit_chunks(n, k, oh, ow, itemsize, budget):
    """(images, rows): as many whole images as fit ``budget`` bytes of columns, at least one;
    when not even one fits, as many output rows of one image as fit, at least one."""
    row_bytes = k * ow * itemsize
    image_bytes = row_bytes * oh
    if image_bytes <= budget:
        return max(1, min(n, budget // image_bytes)), oh
    return 1, max(1, min(oh, budget // row_bytes))


def _chunks(n, oh, nb, rows):
    for s in range(0, n, nb):
        for oy0 in range(0, oh, rows):
            yield s, min(s + nb, n), oy0, min(oy0 + rows, oh)


# ------------------------------------------------------------ the drivers, for any backend
@dataclass(frozen=True)
class ConvBackend:
    """What one backend brings to the drivers below (each with its kernel's signature)."""

    im2col_rows: Callable
    col2im_rows: Callable
    conv2d_image_fwd: Callable
    conv2d_image_bwd_input: Callable
    conv2d_image_bwd_weight: Callable
    conv2d_plan: Callable
    plan_chunks: Callable
    # add_weight_grad(gw (O, K), gy (nb, O, L), cols (nb, K, L)): gw += sum_i gy[i] @ cols[i].T
    add_weight_grad: Callable
    # empty(like, shape, dtype): an uninitialised array on like's device (the CPU's come from
    # the buffer pool, kernels/_pool.py)
    empty: Callable
    # add_bias(y (N, O, L), b (O,)): y += b per channel, in place
    add_bias: Callable


def conv2d_fwd_with(backend, x, w, b, geom, max_scratch, method):
    """conv2d_fwd on ``backend``'s pieces."""
    xp = array_module(x)
    kh, kw, sh, sw, ph, pw, dh, dw = geom.args
    oh, ow = geom.oh, geom.ow
    n, c = x.shape[:2]
    o = w.shape[0]
    k = c * kh * kw
    path, _ = backend.conv2d_plan("fwd", n, c, o, kh, kw, sh, sw, oh, ow, x.itemsize,
                                  max_scratch, method)
    if path == "image":
        bias = xp.zeros(o, dtype=x.dtype) if b is None else xp.ascontiguousarray(b)
        return backend.conv2d_image_fwd(xp.ascontiguousarray(x), xp.ascontiguousarray(w), bias,
                                        sh, sw, ph, pw, dh, dw, oh, ow)
    w2 = w.reshape(o, k)
    y = backend.empty(x, (n, o, oh * ow), x.dtype)
    nb, rows = backend.plan_chunks(n, k, oh, ow, x.itemsize, max_scratch)
    for s, e, oy0, oy1 in _chunks(n, oh, nb, rows):
        cols = backend.im2col_rows(x[s:e], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
        # (O, K) @ (nb, K, L) -> (nb, O, L): already NCHW, no transpose needed
        if oy0 == 0 and oy1 == oh:
            xp.matmul(w2, cols, out=y[s:e])  # written in place: no temporary, no copy
        else:
            y[s:e, :, oy0 * ow:oy1 * ow] = xp.matmul(w2, cols)
    if b is not None:
        backend.add_bias(y, b)
    return y.reshape(n, o, oh, ow)


def conv2d_bwd_input_with(backend, gy, w, h, wd, geom, max_scratch, method):
    """conv2d_bwd_input on ``backend``'s pieces."""
    xp = array_module(gy)
    kh, kw, sh, sw, ph, pw, dh, dw = geom.args
    n, o, oh, ow = gy.shape
    c = w.shape[1]
    k = c * kh * kw
    path, _ = backend.conv2d_plan("bwd_input", n, c, o, kh, kw, sh, sw, oh, ow, gy.itemsize,
                                  max_scratch, method)
    if path == "image":
        return backend.conv2d_image_bwd_input(xp.ascontiguousarray(gy), xp.ascontiguousarray(w),
                                              h, wd, sh, sw, ph, pw, dh, dw)
    w2t = w.reshape(o, k).T
    gy3 = gy.reshape(n, o, oh * ow)
    gx = backend.empty(gy, (n, c, h, wd), gy.dtype)
    nb, rows = backend.plan_chunks(n, k, oh, ow, gy.itemsize, max_scratch)
    for s, e, oy0, oy1 in _chunks(n, oh, nb, rows):
        if oy0 == 0:
            gx[s:e] = 0  # zeroed chunk by chunk, while the chunk is about to be used
        gcols = backend.empty(gy, (e - s, k, (oy1 - oy0) * ow), gy.dtype)
        xp.matmul(w2t, gy3[s:e, :, oy0 * ow:oy1 * ow], out=gcols)  # (nb, K, rows*ow)
        backend.col2im_rows(gcols, gx[s:e], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
    return gx


def conv2d_bwd_weight_with(backend, x, gy, geom, max_scratch, method):
    """conv2d_bwd_weight on ``backend``'s pieces."""
    xp = array_module(x)
    kh, kw, sh, sw, ph, pw, dh, dw = geom.args
    n, c = x.shape[:2]
    _, o, oh, ow = gy.shape
    k = c * kh * kw
    path, _ = backend.conv2d_plan("bwd_weight", n, c, o, kh, kw, sh, sw, oh, ow, x.itemsize,
                                  max_scratch, method)
    if path == "image":
        return backend.conv2d_image_bwd_weight(xp.ascontiguousarray(x), xp.ascontiguousarray(gy),
                                               kh, kw, sh, sw, ph, pw, dh, dw)
    gy3 = gy.reshape(n, o, oh * ow)
    gw = xp.zeros((o, k), dtype=x.dtype)
    nb, rows = backend.plan_chunks(n, k, oh, ow, x.itemsize, max_scratch)
    for s, e, oy0, oy1 in _chunks(n, oh, nb, rows):
        cols = backend.im2col_rows(x[s:e], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, oy0, oy1)
        backend.add_weight_grad(gw, gy3[s:e, :, oy0 * ow:oy1 * ow], cols)
    return gw.reshape(o, c, kh, kw)


def conv_transpose2d_fwd_with(backend, x, w, b, geom, max_scratch, method):
    """conv_transpose2d_fwd on ``backend``'s pieces.

    Every input pixel scales the kernel onto the output and overlaps are summed: that is the
    input-gradient of a convolution from (geom.oh, geom.ow) down to x's size, same weight.
    """
    y = conv2d_bwd_input_with(backend, x, w, geom.oh, geom.ow, geom, max_scratch, method)
    if b is not None:
        n, o, oh, ow = y.shape
        backend.add_bias(y.reshape(n, o, oh * ow), b)
    return y


# ------------------------------------------------------------------- the CPU's kernels
def _add_weight_grad(gw, gy, cols):
    """gw (O, K) += gy[i] (O, L) @ cols[i].T (L, K), one image after the other: a fixed order,
    the same sum on every run."""
    for i in range(gy.shape[0]):
        gw += gy[i] @ cols[i].T


def _empty(like, shape, dtype):
    return pool_empty(shape, dtype)


@jit(parallel=True)
def _add_bias(y, b):
    """y (N, O, L) += b (O,), one (image, channel) row per task: NumPy's broadcast add runs on
    one thread (0.24 ms on 128x16x784 float32)."""
    n, o, _ = y.shape
    for row in prange(n * o):
        r = y[row // o, row % o]
        bias = b[row % o]
        for i in range(r.size):
            r[i] += bias


CPU = ConvBackend(im2col_rows, col2im_rows, conv2d_image_fwd, conv2d_image_bwd_input,
                  conv2d_image_bwd_weight, conv2d_plan, plan_chunks, _add_weight_grad, _empty,
                  _add_bias)


def conv2d_fwd(x, w, b, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, geom.oh, geom.ow).

    ``method``: 'im2col', 'image', or None to let ``conv2d_plan`` pick.
    """
    return conv2d_fwd_with(CPU, x, w, b, geom, max_scratch, method)


def conv2d_bwd_input(gy, w, h, wd, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """gy (N, O, oh, ow), w (O, C, kh, kw) -> gx (N, C, h, wd): the adjoint of conv2d in x.

    Reads geom's kernel, stride, padding and dilation; the output size is gy's.
    """
    return conv2d_bwd_input_with(CPU, gy, w, h, wd, geom, max_scratch, method)


def conv2d_bwd_weight(x, gy, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, C, H, W), gy (N, O, oh, ow) -> gw (O, C, kh, kw).

    Reads geom's kernel, stride, padding and dilation; the output size is gy's.
    """
    return conv2d_bwd_weight_with(CPU, x, gy, geom, max_scratch, method)


def conv_transpose2d_fwd(x, w, b, geom, max_scratch=DEFAULT_MAX_SCRATCH, method=None):
    """x (N, Cin, H, W), w (Cin, Cout, kh, kw), b (Cout,) or None -> y (N, Cout, oh, ow), with
    (oh, ow) = (geom.oh, geom.ow), the transpose convolution's output size."""
    return conv_transpose2d_fwd_with(CPU, x, w, b, geom, max_scratch, method)
