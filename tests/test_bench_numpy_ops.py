"""The benchmarks' plain-NumPy ops agree with npae, forward and backward, in float64."""

import sys
from pathlib import Path

import numpy as np
import pytest

import npae.functional as F
from npae import Tensor

try:
    from npae.benchmarks import numpy_ops
except ModuleNotFoundError:
    # not installed as npae.benchmarks: import benchmarks/ from the checkout instead
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import numpy_ops

TOL = {"rtol": 1e-12, "atol": 1e-12}


def leaf(a):
    return Tensor(a.copy(), requires_grad=True)


def assert_close(actual, expected):
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, **TOL)


# (kh, kw, stride, padding, H, W); the article's 3x3 s1 p1 and 3x3 s2 p1 first
CONV_CASES = [
    (3, 3, 1, 1, 4, 4),
    (3, 3, 2, 1, 4, 4),
    (3, 3, 2, 1, 7, 6),  # stride leaves the last input row/column out of every window
    (1, 1, 1, 0, 3, 5),
    (2, 2, 2, 0, 6, 4),
    (2, 3, 1, 0, 5, 5),
    (5, 5, 3, 2, 8, 7),
]


@pytest.mark.parametrize("kh, kw, s, p, h, wd", CONV_CASES)
def test_conv2d(rng, kh, kw, s, p, h, wd):
    x = rng.standard_normal((2, 3, h, wd))
    w = rng.standard_normal((4, 3, kh, kw))
    b = rng.standard_normal(4)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = F.conv2d(tx, tw, tb, stride=s, padding=p)
    assert_close(numpy_ops.conv2d_fwd(x, w, b, s, p), ty.data)
    assert_close(numpy_ops.conv2d_fwd(x, w, None, s, p), F.conv2d(x, w, None, s, p).data)

    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    gx, gw, gb = numpy_ops.conv2d_bwd(x, w, gy, s, p)
    assert_close(gx, tx.grad)
    assert_close(gw, tw.grad)
    assert_close(gb, tb.grad)


# (kh, kw, stride, padding, output_padding, H, W); the article's 2x2 s2 and 3x3 s2 p1 op1 first
CONV_T_CASES = [
    (2, 2, 2, 0, 0, 3, 3),
    (3, 3, 2, 1, 1, 4, 4),
    (3, 3, 2, 1, 0, 4, 5),
    (3, 3, 1, 1, 0, 4, 4),
    (3, 3, 2, 0, 1, 2, 3),  # output_padding past the stamps: a zero row and column
    (4, 4, 3, 1, 2, 3, 3),
    (1, 1, 1, 0, 0, 3, 2),
    (2, 3, 2, 1, 1, 3, 4),
]


@pytest.mark.parametrize("kh, kw, s, p, op, h, wd", CONV_T_CASES)
def test_conv_transpose2d(rng, kh, kw, s, p, op, h, wd):
    x = rng.standard_normal((2, 3, h, wd))
    w = rng.standard_normal((3, 4, kh, kw))
    b = rng.standard_normal(4)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = F.conv_transpose2d(tx, tw, tb, stride=s, padding=p, output_padding=op)
    assert_close(numpy_ops.conv_transpose2d_fwd(x, w, b, s, p, op), ty.data)
    expected = F.conv_transpose2d(x, w, None, s, p, op).data
    assert_close(numpy_ops.conv_transpose2d_fwd(x, w, None, s, p, op), expected)

    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    gx, gw, gb = numpy_ops.conv_transpose2d_bwd(x, w, gy, s, p)
    assert_close(gx, tx.grad)
    assert_close(gw, tw.grad)
    assert_close(gb, tb.grad)


# (kernel, stride, H, W); the article's 2x2 first, then overlapping and ragged windows
POOL_CASES = [(2, 2, 4, 4), (2, 2, 5, 7), (3, 2, 7, 6), (3, 3, 6, 6), (2, 1, 4, 5)]


@pytest.mark.parametrize("k, s, h, wd", POOL_CASES)
def test_max_pool2d(rng, k, s, h, wd):
    # a permutation: no ties, so the argmax is unambiguous
    x = rng.permutation(2 * 3 * h * wd).reshape(2, 3, h, wd).astype(np.float64)
    tx = leaf(x)
    ty, tidx = F.max_pool2d(tx, k, s, return_indices=True)
    y, idx = numpy_ops.max_pool2d_fwd(x, k, s)
    assert_close(y, ty.data)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, tidx.data)

    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    assert_close(numpy_ops.max_pool2d_bwd(gy, idx, x.shape), tx.grad)


@pytest.mark.parametrize("k, s", [(2, 2), (3, 2)])
def test_max_pool2d_ties_follow_npae(rng, k, s):
    # few distinct values: every window holds ties, which go to the first in scan order
    x = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(np.float64)
    tx = leaf(x)
    ty, tidx = F.max_pool2d(tx, k, s, return_indices=True)
    y, idx = numpy_ops.max_pool2d_fwd(x, k, s)
    np.testing.assert_array_equal(idx, tidx.data)
    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    assert_close(numpy_ops.max_pool2d_bwd(gy, idx, x.shape), tx.grad)


# (kernel, stride, H, W, output size): the article's 2x2 first; 3/2 pooling repeats indices
UNPOOL_CASES = [
    (2, 2, 4, 4, (4, 4)),
    (2, 2, 5, 5, (5, 5)),
    (3, 2, 7, 7, (7, 7)),
]


@pytest.mark.parametrize("k, s, h, wd, out_hw", UNPOOL_CASES)
def test_max_unpool2d(rng, k, s, h, wd, out_hw):
    source = rng.integers(0, 3, size=(2, 3, h, wd)).astype(np.float64)
    _, idx = numpy_ops.max_pool2d_fwd(source, k, s)
    x = rng.standard_normal(idx.shape)
    tx = leaf(x)
    ty = F.max_unpool2d(tx, idx, k, s, output_size=out_hw)
    assert_close(numpy_ops.max_unpool2d_fwd(x, idx, out_hw), ty.data)

    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    assert_close(numpy_ops.max_unpool2d_bwd(gy, idx), tx.grad)


def test_max_unpool2d_sums_duplicate_indices():
    x = np.array([[[[5.0, 7.0, 1.0]]]])
    idx = np.array([[[[1, 1, 3]]]])
    y = numpy_ops.max_unpool2d_fwd(x, idx, (1, 4))
    np.testing.assert_array_equal(y.ravel(), [0.0, 12.0, 0.0, 1.0])
    np.testing.assert_array_equal(numpy_ops.max_unpool2d_bwd(y, idx).ravel(), [12.0, 12.0, 1.0])


@pytest.mark.parametrize("scale, h, wd", [(2, 4, 4), (2, 3, 5), (3, 2, 3), (1, 3, 3)])
def test_upsample_nearest2d(rng, scale, h, wd):
    x = rng.standard_normal((2, 3, h, wd))
    tx = leaf(x)
    ty = F.upsample_nearest2d(tx, scale_factor=scale)
    assert_close(numpy_ops.upsample_nearest2d_fwd(x, scale), ty.data)

    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    assert_close(numpy_ops.upsample_nearest2d_bwd(gy, scale), tx.grad)


@pytest.mark.parametrize("x_shape", [(5, 7), (2, 3, 7), (7,)])
def test_linear(rng, x_shape):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((4, 7))
    b = rng.standard_normal(4)
    tx, tw, tb = leaf(x), leaf(w), leaf(b)
    ty = F.linear(tx, tw, tb)
    assert_close(numpy_ops.linear_fwd(x, w, b), ty.data)
    assert_close(numpy_ops.linear_fwd(x, w, None), F.linear(x, w).data)

    gy = rng.standard_normal(ty.shape)
    ty.backward(gy)
    gx, gw, gb = numpy_ops.linear_bwd(x, w, gy)
    assert_close(gx, tx.grad)
    assert_close(gw, tw.grad)
    assert_close(gb, tb.grad)


def test_every_op_keeps_float32(rng):
    f32 = np.float32

    def randn(*shape):
        return rng.standard_normal(shape).astype(f32)

    x, w, b = randn(2, 3, 6, 6), randn(4, 3, 3, 3), randn(4)
    y = numpy_ops.conv2d_fwd(x, w, b, 2, 1)
    outs = [y, *numpy_ops.conv2d_bwd(x, w, y, 2, 1)]
    wt = randn(3, 4, 3, 3)
    y = numpy_ops.conv_transpose2d_fwd(x, wt, b, 2, 1, 1)
    outs += [y, *numpy_ops.conv_transpose2d_bwd(x, wt, y, 2, 1)]
    y, idx = numpy_ops.max_pool2d_fwd(x, 2, 2)
    outs += [y, numpy_ops.max_pool2d_bwd(y, idx, x.shape)]
    u = numpy_ops.max_unpool2d_fwd(y, idx, (6, 6))
    outs += [u, numpy_ops.max_unpool2d_bwd(u, idx)]
    u = numpy_ops.upsample_nearest2d_fwd(x, 2)
    outs += [u, numpy_ops.upsample_nearest2d_bwd(u, 2)]
    xl, wl = randn(5, 7), randn(4, 7)
    y = numpy_ops.linear_fwd(xl, wl, b)
    outs += [y, *numpy_ops.linear_bwd(xl, wl, y)]
    assert [o.dtype for o in outs] == [f32] * len(outs)
