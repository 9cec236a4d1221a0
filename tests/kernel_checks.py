"""The kernel check bodies, shared by every backend (STYLE.md practice 14).

Each check takes a ``Lane``: the kernel module under test and how arrays go to its device and
back. tests/kernels/test_kernels.py runs them on the Numba CPU kernels (adding the jitted vs
``.py_func`` comparisons only the CPU has); tests/cuda/test_cuda_kernels.py runs them on the GPU
twins, under the CUDA simulator on NumPy arrays and on a GPU on CuPy arrays. The expected values
come from tests/reference.py (float64 loops from the definitions), never from a kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import reference as R

from npae.engine.shapes import Geometry, upsample_nearest2d_plan


def _same(x):
    return x


@dataclass
class Lane:
    name: str
    K: Any  # the kernel module
    dev: Callable = _same  # host array -> the kernels' device
    host: Callable = _same  # device array -> host (NumPy) array


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)


def geometry(case):
    """(kh, kw, sh, sw, ph, pw, dh, dw, oh, ow) of a conv2d case, from the reference's view."""
    x, w = case.inputs[:2]
    (sh, sw), (ph, pw), (dh, dw) = (case.params[k] for k in ("stride", "padding", "dilation"))
    kh, kw = w.shape[2:]
    oh = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return kh, kw, sh, sw, ph, pw, dh, dw, oh, ow


def check_im2col_rows(lane, x, g, oy0, oy1):
    """cols of output rows [oy0, oy1) equal the reference's, exactly (a pure copy)."""
    ow = g[9]
    cols = lane.host(lane.K.im2col_rows(lane.dev(x), *g, oy0, oy1))
    ref = R.im2col_ref(x, g[0:2], g[2:4], g[4:6], g[6:8])[:, :, oy0 * ow:oy1 * ow]
    assert cols.dtype == x.dtype
    np.testing.assert_array_equal(cols, ref.astype(x.dtype))
    return cols


def check_col2im_rows(lane, cols, shape, g, split):
    """Two row ranges that together cover every output row add up to col2im_ref of the whole."""
    oh, ow = g[8], g[9]
    out = lane.dev(np.zeros(shape, cols.dtype))
    for oy0, oy1 in ((0, split), (split, oh)):
        if oy1 > oy0:
            part = np.ascontiguousarray(cols[:, :, oy0 * ow:oy1 * ow])
            lane.K.col2im_rows(lane.dev(part), out, *g, oy0, oy1)
    out = lane.host(out)
    ref = R.col2im_ref(cols.astype(np.float64), shape, g[0:2], g[2:4], g[4:6], g[6:8])
    np.testing.assert_allclose(out, ref, **tol(cols.dtype))
    return out


def check_conv2d_fwd_and_grads(lane, dtype, case, scratch, method):
    K, dev, host = lane.K, lane.dev, lane.host
    x, w, b = (None if v is None else v.astype(dtype) for v in case.inputs)
    g = geometry(case)
    geom = Geometry(*g)
    y = host(K.conv2d_fwd(dev(x), dev(w), None if b is None else dev(b), geom,
                          max_scratch=scratch, method=method))
    np.testing.assert_allclose(y, R.conv2d_ref(x, w, b, g[2:4], g[4:6], g[6:8]), **tol(dtype))

    gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    gx = host(K.conv2d_bwd_input(dev(gy), dev(w), x.shape[2], x.shape[3], geom,
                                 max_scratch=scratch, method=method))
    # grad-input of a conv is the transpose conv of gy; output_padding recovers the exact size
    base = [(y.shape[2 + a] - 1) * g[2 + a] - 2 * g[4 + a] + g[6 + a] * (g[a] - 1) + 1
            for a in range(2)]
    op = (x.shape[2] - base[0], x.shape[3] - base[1])
    np.testing.assert_allclose(gx, R.conv_transpose2d_ref(gy, w, None, g[2:4], g[4:6], op, g[6:8]),
                               **tol(dtype))

    gw = host(K.conv2d_bwd_weight(dev(x), dev(gy), geom, max_scratch=scratch, method=method))
    cols = R.im2col_ref(x, g[0:2], g[2:4], g[4:6], g[6:8])  # (N, K, L)
    gw_ref = sum(gy[i].reshape(w.shape[0], -1).astype(np.float64) @ cols[i].T
                 for i in range(x.shape[0])).reshape(w.shape)
    np.testing.assert_allclose(gw, gw_ref, **tol(dtype))


def check_conv_transpose2d_fwd(lane, dtype, case, scratch, method):
    x, w, b = (None if v is None else v.astype(dtype) for v in case.inputs)
    s, p, op, d = (case.params[k] for k in ("stride", "padding", "output_padding", "dilation"))
    ref = R.conv_transpose2d_ref(x, w, b, s, p, op, d)
    geom = Geometry(*w.shape[2:], *s, *p, *d, *ref.shape[2:])
    y = lane.K.conv_transpose2d_fwd(lane.dev(x), lane.dev(w), None if b is None else lane.dev(b),
                                    geom, max_scratch=scratch, method=method)
    np.testing.assert_allclose(lane.host(y), ref, **tol(dtype))


def pool_args(case):
    prm = case.params
    y_ref, idx_ref = R.max_pool2d_ref(case.inputs[0], prm["kernel_size"], prm["stride"],
                                      prm["padding"], prm["dilation"], prm["ceil_mode"])
    args = (*prm["kernel_size"], *prm["stride"], *prm["padding"], *prm["dilation"],
            *y_ref.shape[2:])
    return args, y_ref, idx_ref


def check_max_pool2d_fwd_bwd(lane, dtype, case):
    x = case.inputs[0].astype(dtype)
    args, y_ref, idx_ref = pool_args(case)
    y, idx = (lane.host(a) for a in lane.K.max_pool2d_fwd(lane.dev(x), Geometry(*args)))
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))

    gy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    gx = lane.host(lane.K.max_pool2d_bwd(lane.dev(gy), lane.dev(idx), *x.shape[2:]))
    np.testing.assert_allclose(gx, R.max_pool2d_backward_ref(gy, idx, x.shape[2:]), **tol(dtype))
    return x, args, y, idx


def check_max_pool2d_ties(lane, dtype, seed, k, s):
    # few distinct values: ties everywhere; the reference states the rule independently
    x = np.random.default_rng(seed).integers(0, 3, size=(2, 2, 7, 6)).astype(dtype)
    oh, ow = (7 - k) // s + 1, (6 - k) // s + 1
    geom = Geometry(k, k, s, s, 0, 0, 1, 1, oh, ow)
    y, idx = (lane.host(a) for a in lane.K.max_pool2d_fwd(lane.dev(x), geom))
    y_ref, idx_ref = R.max_pool2d_ref(x, (k, k), (s, s))
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref)


def check_max_pool2d_ties_and_nan_with_padding_and_dilation(lane, dtype, seed, k, s, p, d):
    """The general kernel (not the 2x2 fast path) with ties everywhere, some NaNs, padding
    and dilation: the first maximum (or the first NaN) in scan order wins, padding never does;
    the backward sends each gradient to exactly that element."""
    from npae.engine.shapes import pool2d_geometry

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(2, 2, 7, 6)).astype(dtype)
    x[rng.random(x.shape) < 0.15] = np.nan
    geom = pool2d_geometry("test", (7, 6), (k, k), (s, s), (p, p), (d, d), False)
    y, idx = (lane.host(a) for a in lane.K.max_pool2d_fwd(lane.dev(x), geom))
    y_ref, idx_ref = R.max_pool2d_ref(x, (k, k), (s, s), (p, p), (d, d))
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))  # NaN == NaN here
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = lane.host(lane.K.max_pool2d_bwd(lane.dev(gy), lane.dev(idx), 7, 6))
    np.testing.assert_allclose(gx, R.max_pool2d_backward_ref(gy, idx_ref, (7, 6)), **tol(dtype))


def check_max_unpool2d_fwd_bwd(lane, dtype, seed, k, s):
    """Indices from pooling with stride < kernel repeat: duplicates are summed."""
    from optable import tie_free

    rng = np.random.default_rng(seed)
    h, w = 5, 6
    _, idx = R.max_pool2d_ref(tie_free(rng, (2, 3, h, w)), (k, k), (s, s))
    x = rng.standard_normal(idx.shape).astype(dtype)
    y = lane.host(lane.K.max_unpool2d_fwd(lane.dev(x), lane.dev(idx), h, w))
    np.testing.assert_allclose(y, R.max_unpool2d_ref(x, idx, (h, w)), **tol(dtype))

    gy = rng.standard_normal((2, 3, h, w)).astype(dtype)
    gx = lane.host(lane.K.max_unpool2d_bwd(lane.dev(gy), lane.dev(idx)))
    # the gather, written directly
    flat = gy.reshape(2, 3, -1)
    expected = np.take_along_axis(flat, idx.reshape(2, 3, -1), axis=2).reshape(idx.shape)
    np.testing.assert_array_equal(gx, expected)
    return x, idx, y, gy, gx


def check_upsample_nearest2d_fwd_bwd(lane, dtype, seed, h, w, oh, ow):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, h, w)).astype(dtype)
    _, _, rows, cols = upsample_nearest2d_plan("test", (h, w), size=(oh, ow))
    y = lane.host(lane.K.upsample_nearest2d_fwd(lane.dev(x), rows, cols))
    np.testing.assert_array_equal(y, R.upsample_nearest2d_ref(x, (oh, ow)).astype(dtype))
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = lane.host(lane.K.upsample_nearest2d_bwd(lane.dev(gy), rows, cols, h, w))
    np.testing.assert_allclose(gx, R.upsample_nearest2d_backward_ref(gy, (h, w), (oh, ow)),
                               **tol(dtype))
    return x, rows, cols, y, gy, gx


def check_results_are_identical_run_to_run(lane, n, c, side):
    """Every kernel twice (three times) on the same input: bitwise-equal results. Includes the
    scatter-adds (col2im through the conv gradients, unpool with duplicate indices, the
    upsample backward) that a GPU would be tempted to write with atomics."""
    K, dev, host = lane.K, lane.dev, lane.host
    rng = np.random.default_rng(3)
    x = dev(rng.standard_normal((n, c, side, side)).astype(np.float32))
    w = dev(rng.standard_normal((4, c, 3, 3)).astype(np.float32))
    gy = dev(rng.standard_normal((n, 4, side, side)).astype(np.float32))
    w1 = dev(rng.standard_normal((1, c, 3, 3)).astype(np.float32))
    gy1 = dev(rng.standard_normal((n, 1, side, side)).astype(np.float32))
    half = (side - 3) // 2 + 1
    # 3x3 windows at stride 2 overlap: the indices repeat, and the unpool sums duplicates
    _, idx = K.max_pool2d_fwd(x, Geometry(3, 3, 2, 2, 0, 0, 1, 1, half, half))
    gp = dev(rng.standard_normal((n, c, half, half)).astype(np.float32))
    rows = np.arange(2 * side) // 2
    same = Geometry(3, 3, 1, 1, 1, 1, 1, 1, side, side)  # 3x3, padding 1: side x side stays
    up = Geometry(3, 3, 2, 2, 1, 1, 1, 1, 2 * side - 1, 2 * side - 1)  # transposed, stride 2
    pool = Geometry(2, 2, 2, 2, 0, 0, 1, 1, side // 2, side // 2)
    gu = dev(rng.standard_normal((n, c, 2 * side, 2 * side)).astype(np.float32))

    def once():
        return [host(a) for a in (
            K.conv2d_fwd(x, w, None, same),
            K.conv2d_bwd_input(gy, w, side, side, same),
            K.conv2d_bwd_weight(x, gy, same),
            K.conv2d_bwd_input(gy1, w1, side, side, same, method="image"),
            K.conv2d_bwd_weight(x, gy1, same, method="image"),
            K.conv_transpose2d_fwd(gy, w, None, up),
            *K.max_pool2d_fwd(x, pool),
            K.max_unpool2d_fwd(gp, idx, side, side),
            K.upsample_nearest2d_bwd(gu, rows, rows, side, side),
            K.relu_bwd(gu, K.relu_fwd(gu)),
        )]

    runs = [once() for _ in range(3)]
    for later in runs[1:]:
        for a, b in zip(runs[0], later, strict=True):
            assert np.array_equal(a, b)


def check_relu(lane, dtype, n):
    """relu_fwd against relu_ref (NaN kept, 0 at the kink); relu_bwd passes gy where y > 0."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    x[::7] = 0  # the kink itself: gradient 0 there, as in PyTorch
    if n > 3:
        x[3] = np.nan
    y = lane.K.relu_fwd(lane.dev(x))
    np.testing.assert_array_equal(lane.host(y), R.relu_ref(x.astype(np.float64)).astype(dtype))
    gy = rng.standard_normal(n).astype(dtype)
    gx = lane.host(lane.K.relu_bwd(lane.dev(gy), y))
    np.testing.assert_array_equal(gx, np.where(x > 0, gy, 0))  # NaN and 0 pass no gradient
    return x, gy


def check_index_bounds(lane, bad):
    """The kernels that index by data (unpool's scatter and gather, pooling's backward,
    upsampling's sources) refuse an index outside the plane with an IndexError saying which:
    Numba does not bounds-check, and the issue's max_unpool2d_fwd with an index of 1e7 crashed
    the interpreter."""
    G = lane.K
    x = lane.dev(np.ones((1, 2, 2, 2)))
    idx = np.zeros((1, 2, 2, 2), np.int64)
    idx[0, 1, 1, 0] = bad
    says = rf"max_unpool2d: index {bad} at indices\[0, 1, 1, 0\] is outside the 2x2 output "
    with pytest.raises(IndexError, match=says + r"plane \(valid: 0..3\)"):
        G.max_unpool2d_fwd(x, lane.dev(idx), 2, 2)
    with pytest.raises(IndexError, match=says):
        G.max_unpool2d_bwd(lane.dev(np.ones((1, 2, 2, 2))), lane.dev(idx))
    with pytest.raises(IndexError, match=says):
        G.max_pool2d_bwd(x, lane.dev(idx), 2, 2)
    rows = np.array([0, bad])
    with pytest.raises(IndexError, match=rf"upsample_nearest2d: rows holds source {bad}, "
                                         r"outside the input's 2 \(valid: 0..1\)"):
        G.upsample_nearest2d_fwd(x, rows, np.array([0, 1]))
    with pytest.raises(IndexError, match=rf"cols holds source {bad}"):
        G.upsample_nearest2d_bwd(x, np.array([0, 1]), rows, 2, 2)


def check_adam_step(lane, dtype, n, weight_decay, step):
    """adam_step updates p, m and v in place as adam_step_ref says, from a state part-way in."""
    rng = np.random.default_rng(n + step)
    p, g, m = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    v = rng.random(n).astype(dtype)
    hyper = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=weight_decay, step=step)
    want = R.adam_step_ref(p, g, m, v, **hyper)
    arrays = [lane.dev(a.copy()) for a in (p, g, m, v)]
    lane.K.adam_step(*arrays, **hyper)
    for got, ref in zip((arrays[0], arrays[2], arrays[3]), want, strict=True):
        np.testing.assert_allclose(lane.host(got), ref, **tol(dtype))


def check_sigmoid(lane, dtype, n):
    """sigmoid_fwd against sigmoid_ref (no overflow at +-1000, NaN kept); sigmoid_bwd is
    gy * y * (1 - y)."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 10).astype(dtype)
    x[::11] = 1000.0
    x[5::11] = -1000.0
    if n > 3:
        x[3] = np.nan
    y = lane.K.sigmoid_fwd(lane.dev(x))
    np.testing.assert_allclose(lane.host(y), R.sigmoid_ref(x.astype(np.float64)),
                               **tol(dtype))
    gy = rng.standard_normal(n).astype(dtype)
    gx = lane.host(lane.K.sigmoid_bwd(lane.dev(gy), y))
    yh = lane.host(y).astype(np.float64)
    np.testing.assert_allclose(gx, gy * yh * (1 - yh), **tol(dtype))
