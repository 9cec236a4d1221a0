"""Exact adjoint identities in float64: <A x, y> = <x, A^T y> to ~1e-12.

Each linear op's backward must be the transpose of its forward, and the sibling ops must be each
other's transposes: conv2d vs conv_transpose2d, im2col vs col2im, upsample vs its backward,
unpool vs its gather."""

import numpy as np
from hypothesis import given
from optable import (
    conv2d_cases,
    conv_transpose2d_cases,
    max_pool2d_cases,
    max_unpool2d_cases,
    upsample_cases,
)

import npae
import npae.functional as F
from npae import Tensor
from npae.engine.dispatch import kernels_for


def _dot_identity(lhs, rhs, scale):
    assert abs(lhs - rhs) <= 1e-12 * max(scale, 1.0), (lhs, rhs)


@given(case=conv2d_cases())
def test_conv2d_and_conv_transpose2d_are_adjoint(case):
    x, w, _ = case.inputs
    prm = case.params
    y = F.conv2d(Tensor(x), Tensor(w), **prm)
    # conv_transpose2d with the same weight maps y's shape back onto x's shape
    tr = lambda t: F.conv_transpose2d(t, Tensor(w), output_size=x.shape[2:], **prm)  # noqa: E731
    assert npae.adjoint_check(lambda t: F.conv2d(t, Tensor(w), **prm), x, adjoint=tr, rtol=1e-12)
    assert npae.adjoint_check(lambda t: F.conv2d(t, Tensor(w), **prm), x, rtol=1e-12)
    v = np.random.default_rng(0).standard_normal(y.shape)
    _dot_identity(np.vdot(y.data, v), np.vdot(x, tr(Tensor(v)).data),
                  np.abs(y.data).sum() * np.abs(v).max())


@given(case=conv_transpose2d_cases())
def test_conv_transpose2d_backward_is_its_adjoint(case):
    x, w, _ = case.inputs
    assert npae.adjoint_check(lambda t: F.conv_transpose2d(t, Tensor(w), **case.params), x,
                              rtol=1e-12)


@given(case=conv2d_cases())
def test_im2col_and_col2im_are_adjoint(case):
    x, w, _ = case.inputs
    (sh, sw), (ph, pw), (dh, dw) = (case.params[k] for k in ("stride", "padding", "dilation"))
    kh, kw = w.shape[2:]
    oh = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    g = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    K = kernels_for(x)  # the GPU twins in make test-cuda-sim
    cols = K.im2col(x, *g)
    c = np.random.default_rng(1).standard_normal(cols.shape)
    back = K.col2im(c, x.shape[1], x.shape[2], x.shape[3], *g)
    _dot_identity(np.vdot(cols, c), np.vdot(x, back), np.abs(cols).sum() * np.abs(c).max())


@given(case=upsample_cases())
def test_upsample_and_its_backward_are_adjoint(case):
    (x,) = case.inputs
    assert npae.adjoint_check(lambda t: F.upsample_nearest2d(t, **case.params), x, rtol=1e-12)


@given(case=max_unpool2d_cases())
def test_unpool_and_its_gather_are_adjoint(case):
    x, idx = case.inputs
    assert npae.adjoint_check(lambda t: F.max_unpool2d(t, idx, **case.params), x, rtol=1e-12)


@given(case=max_pool2d_cases())
def test_max_pool_backward_is_adjoint_of_selecting_the_argmax(case):
    # with the argmax fixed, max pooling is the linear map "read x at idx"
    (x,) = case.inputs
    _, idx = F.max_pool2d(Tensor(x), return_indices=True, **case.params)
    flat_idx = idx.data.reshape(idx.shape[0], idx.shape[1], -1)

    def select(t):
        return Tensor(np.take_along_axis(t.data.reshape(*t.shape[:2], -1), flat_idx, 2)
                      .reshape(idx.shape))

    y = F.max_pool2d(Tensor(x, requires_grad=True), **case.params)
    np.testing.assert_array_equal(y.data, select(Tensor(x)).data)
    v = np.random.default_rng(2).standard_normal(y.shape)
    xt = Tensor(x, requires_grad=True)
    F.max_pool2d(xt, **case.params).backward(v)
    _dot_identity(np.vdot(y.data, v), np.vdot(x, xt.grad), np.abs(y.data).sum() * np.abs(v).max())
